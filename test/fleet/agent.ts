/**
 * The client side of the fleet test, run inside the client namespace (`ip netns exec … node --import tsx
 * test/fleet/agent.ts`): it holds groups of clients and publish streams, all going through the balancers, and
 * answers the test's requests over the IPC channel. The test process (in the machine's own namespace, which has
 * no route to the fleet) asserts on what it reports.
 */
import { PublishStream } from "../helpers/load.js";
import { until } from "../helpers/server.js";
import { type ClientOptions, FleetRawClient, FleetSioClient, PollingSession } from "./clients.js";

export interface OpenArgs extends ClientOptions {
  group: string;
  channel: string;
  raw: number;
  sio: number;
}

interface Group {
  clients: (FleetRawClient | FleetSioClient)[];
  stream?: PublishStream;
  channel: string;
}

const balancers = (process.env.FLEET_BALANCERS ?? "").split(",").filter(Boolean);
const apiKey = process.env.FLEET_API_KEY ?? "";
const groups = new Map<string, Group>();
let publishTurn = 0;

function group(name: string): Group {
  const g = groups.get(name);
  if (!g) throw new Error(`no client group ${name}`);
  return g;
}

const ops: Record<string, (args: never) => Promise<unknown>> = {
  /** Opens `raw` + `sio` clients, alternating balancers; resolves once every one is subscribed. */
  async open(a: OpenArgs) {
    const clients: Group["clients"] = [];
    for (let i = 0; i < a.raw; i++) clients.push(new FleetRawClient(balancers, i, a.channel, a));
    for (let i = 0; i < a.sio; i++) clients.push(new FleetSioClient(balancers, i, a.channel, a));
    groups.set(a.group, { clients, channel: a.channel });
    await until(
      () => clients.every((c) => c.stats.subscribed),
      30_000,
      `${a.group}: every client subscribed`,
      50,
    );
    return clients.length;
  },

  /** A publish stream through the balancers in turn, retried (same idempotency key) until acknowledged. */
  async stream(a: { group: string; everyMs: number }) {
    const g = group(a.group);
    g.stream = new PublishStream(
      () => balancers[publishTurn++ % balancers.length] as string,
      g.channel,
      a.everyMs,
      {
        retry: true,
        retryForMs: 40_000,
        apiKey,
      },
    );
    return true;
  },

  /** Acknowledged publishes so far. */
  async acked(a: { group: string }) {
    return group(a.group).stream?.acked.length ?? 0;
  },

  async waitSubscribed(a: { group: string; timeoutMs: number }) {
    const g = group(a.group);
    await until(
      () => g.clients.every((c) => c.stats.subscribed),
      a.timeoutMs,
      `${a.group}: all subscribed`,
      50,
    );
    return true;
  },

  /**
   * Stops the stream, publishes one last message and waits until every client has it: what was published is
   * then all there is to receive. The stream's acknowledgements and failures.
   */
  async finish(a: { group: string; finalN: number; timeoutMs: number }) {
    const g = group(a.group);
    const stream = g.stream;
    if (!stream) throw new Error(`${a.group}: no stream`);
    await stream.stop();
    await stream.publishOne(a.finalN);
    const deadline = Date.now() + a.timeoutMs;
    const lacking = () => g.clients.filter((c) => !c.stats.received.some((r) => r.n === a.finalN)).length;
    while (lacking() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return { acked: stream.acked, failures: stream.failures, retries: stream.retries, lacking: lacking() };
  },

  async stats(a: { group: string }) {
    return group(a.group).clients.map((c) => c.stats);
  },

  async close(a: { group: string }) {
    const g = groups.get(a.group);
    if (!g) return 0;
    await g.stream?.stop();
    for (const c of g.clients) c.close();
    groups.delete(a.group);
    return g.clients.length;
  },

  /**
   * `sessions` long-polling sessions by hand, each request through the other balancer than the one before; each
   * subscribes, then `messages` publishes are made and every session polls until it has all of them.
   */
  async polling(a: { channel: string; sessions: number; messages: number }) {
    const sessions = Array.from({ length: a.sessions }, (_, i) => new PollingSession(balancers, i));
    for (const s of sessions) await s.open();
    const acks = [];
    for (const s of sessions) acks.push(await s.subscribe(a.channel));
    const stream = new PublishStream(
      () => balancers[publishTurn++ % balancers.length] as string,
      a.channel,
      1e9,
      {
        retry: true,
        apiKey,
      },
    );
    const base = 2_000_000;
    for (let n = base; n < base + a.messages; n++) await stream.publishOne(n);
    await stream.stop();
    const want = Array.from({ length: a.messages }, (_, i) => base + i);
    await Promise.all(
      sessions.map(async (s) => {
        const deadline = Date.now() + 20_000;
        while (!want.every((n) => s.messages.includes(n)) && Date.now() < deadline) await s.poll();
      }),
    );
    const out = sessions.map((s) => ({
      server: s.server,
      servedBy: s.servedBy,
      via: s.via,
      received: s.messages.filter((n) => n >= base),
    }));
    await Promise.all(sessions.map((s) => s.close()));
    return { acks, sessions: out, want };
  },
};

process.on("message", async (m: { id: number; op: string; args: unknown }) => {
  try {
    const op = ops[m.op];
    if (!op) throw new Error(`unknown op ${m.op}`);
    const result = await op(m.args as never);
    process.send?.({ id: m.id, ok: true, result });
  } catch (err) {
    process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
// The test's IPC channel going away means the test is gone: so are we.
process.on("disconnect", () => process.exit(0));
process.send?.({ id: 0, ok: true, result: "ready" });
