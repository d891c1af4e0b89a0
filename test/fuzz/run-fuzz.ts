/**
 * One fuzz run against a fresh built server: the fuzzers split the input budget and run at once, while a
 * well-behaved raw client and a Socket.IO client on other connections must keep receiving a numbered stream.
 * It reports what it sent and saw, and the problems: an undocumented reply, a restart, memory that grew, a lost
 * message. A failure names its seed; `npm run fuzz -- --seed N` replays it.
 */
import { treeRssBytes } from "../../src/bench/proc-tree.js";
import { RawClient, SioClient } from "../helpers/clients.js";
import { sleep, startServer, until } from "../helpers/server.js";
import { type Findings, fuzzHttp, fuzzSocketIo, fuzzWsFrames } from "./actors.js";
import { Random } from "./random.js";

export type FuzzReport = {
  seed: number;
  inputs: number;
  seconds: number;
  restarts: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  sentinelMessages: number;
  counts: Record<string, number>;
  problems: string[];
};

/** RSS a run may add to the server's tree: heap headroom under this traffic, not a queue that grows. */
const RSS_GROWTH_LIMIT_MIB = 160;

export async function runFuzz(o: { seed: number; inputs: number }): Promise<FuzzReport> {
  const started = Date.now();
  const server = await startServer(["--workers", "2", "--client-rate", "2000", "--max-subscriptions", "64"]);
  const findings: Findings = { problems: [], counts: {} };
  const rng = new Random(o.seed);
  try {
    const raw = await RawClient.open(server.wsUrl);
    const sio = await SioClient.open(server.url);
    await raw.subscribe("sentinel");
    await sio.subscribe("sentinel");
    const rssBefore = treeRssBytes(server.pid);
    let published = 0;
    let streaming = true;
    const stream = (async () => {
      while (streaming) {
        // The sentinel's own publishes must go through too: a failure is a finding, with its reason.
        await server.publish("sentinel", { n: published }).then(
          () => {
            published += 1;
          },
          (err: Error) => {
            findings.problems.push(`a sentinel publish failed: ${err.message} (${String(err.cause ?? "")})`);
            streaming = false;
          },
        );
        await sleep(20); // the sentinel publishes ~50 a second
      }
    })();
    // Each fuzzer gets its own Random, derived from the seed, so adding inputs to one does not shift the others.
    const share = Math.max(1, Math.floor(o.inputs / 3));
    await Promise.all([
      fuzzWsFrames(server.port, new Random(rng.int(2 ** 31)), share, findings),
      fuzzSocketIo(server.port, new Random(rng.int(2 ** 31)), share, findings),
      fuzzHttp(server.port, new Random(rng.int(2 ** 31)), share, findings),
    ]);
    streaming = false;
    await stream;
    const missing = (got: number[]) => [...Array(published).keys()].filter((n) => !got.includes(n));
    await until(() => raw.messages("sentinel").length >= published, 10_000, "the sentinel stream").catch(
      () => {},
    );
    const rawGot = raw.messages("sentinel").map((m) => (m.data as { n: number }).n);
    const sioGot = (await sio.waitForMessages("sentinel", published, 10_000).catch(() => sio.received)).map(
      (m) => (m.data as { n: number }).n,
    );
    for (const [name, got] of [
      ["raw", rawGot],
      ["socket.io", sioGot],
    ] as const) {
      const lost = missing(got);
      if (lost.length > 0)
        findings.problems.push(`the ${name} sentinel lost ${lost.length} of ${published} messages`);
      if (got.some((n, i) => i > 0 && n <= (got[i - 1] as number)))
        findings.problems.push(`the ${name} sentinel got messages out of order`);
    }
    if (raw.closeCode !== null) findings.problems.push(`the raw sentinel was closed (${raw.closeCode})`);
    if (!sio.socket.connected) findings.problems.push("the Socket.IO sentinel was disconnected");
    const status = (await server.status()) as { restarts?: number };
    const restarts = status.restarts ?? -1;
    if (restarts !== 0) {
      const why = [
        ...server.stderr,
        ...server.lines.filter((l) => (l.level ?? 0) >= 40).map((l) => JSON.stringify(l)),
      ];
      findings.problems.push(`${restarts} worker restarts: ${why.join("\n").slice(0, 3000)}`);
    }
    if (server.child.exitCode !== null) findings.problems.push("the primary exited");
    const rssAfter = treeRssBytes(server.pid);
    if (rssAfter - rssBefore > RSS_GROWTH_LIMIT_MIB * 2 ** 20)
      findings.problems.push(`the server's RSS grew ${((rssAfter - rssBefore) / 2 ** 20).toFixed(0)} MiB`);
    raw.close();
    sio.close();
    return {
      seed: o.seed,
      inputs: o.inputs,
      seconds: Math.round((Date.now() - started) / 1000),
      restarts,
      rssBeforeMiB: Math.round(rssBefore / 2 ** 20),
      rssAfterMiB: Math.round(rssAfter / 2 ** 20),
      sentinelMessages: published,
      counts: findings.counts,
      problems: findings.problems,
    };
  } finally {
    await server.stop();
  }
}
