/**
 * What every scenario run shares: a fresh server, a fleet of load clients, connecting with live progress,
 * CPU and RSS metering, and cleanup (clients first, then the server, both by pid) whatever happens.
 */
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { type ServerCommand, ServerProcess } from "../../harness/server-process.js";
import type { BenchConfig } from "../bench-config.js";
import { fmt } from "../format.js";
import { HealthProbe } from "../health-probe.js";
import type { Protocol } from "../load/client-conn.js";
import { type ConnectResult, HANDSHAKE_TIMEOUT_MS } from "../load/ipc-messages.js";
import { LoadFleet } from "../load/load-fleet.js";
import { machineBusyMs, treeCpuMs, treeRssBytes } from "../proc-tree.js";
import type { Progress } from "../progress.js";
import type { ServerSpec } from "../server-specs.js";
import type { ScenarioOutcome } from "./outcome.js";

const READY_TIMEOUT_MS = 60_000;

export interface RunContext {
  config: BenchConfig;
  progress: Progress;
  spec: ServerSpec;
  /** Label for progress lines, e.g. "C switchboard/ws". */
  tag: string;
}

export interface Session {
  server: ServerProcess;
  fleet: LoadFleet;
}

/** Starts a server under test; rejects when it does not log its ready line in time. */
export function startServer(cmd: ServerCommand): Promise<ServerProcess> {
  // A long run logs a lot: keep only the tail, for error messages.
  return ServerProcess.start(cmd, { timeoutMs: READY_TIMEOUT_MS, keepLines: false });
}

/** Stops a server (if it was started) by pid, and logs an abnormal exit code. */
export async function stopServer(ctx: RunContext, server: ServerProcess | undefined): Promise<void> {
  const code = await server?.stop("SIGTERM", 5000);
  if (code !== 0 && code !== undefined) ctx.progress.log(`${ctx.tag}: server exited with code ${code}`);
}

/**
 * Starts a fresh server and enough load processes for `connections` (at least --client-processes), runs `fn`,
 * and always tears both down.
 */
export async function withSession(
  ctx: RunContext,
  opts: { workers: number; connections: number },
  fn: (s: Session) => Promise<ScenarioOutcome>,
): Promise<ScenarioOutcome> {
  // The load clients boot while the server does.
  const fleet = LoadFleet.start(LoadFleet.processesFor(opts.connections, ctx.config.clientProcesses));
  let server: ServerProcess | undefined;
  let health: HealthProbe | undefined;
  let feed: { close(): void } | undefined;
  try {
    server = await startServer(ctx.spec.command(opts.workers));
    // Every scenario also reports how its load slowed the health check a balancer would make meanwhile.
    health = new HealthProbe(server.port);
    if (ctx.config.adminFeed && server.adminPort > 0) feed = openAdminFeed(server.adminPort);
    const outcome = await fn({ server, fleet });
    return { ...outcome, figures: { ...outcome.figures, ...(await health.stop()) } };
  } finally {
    feed?.close();
    await health?.stop();
    await fleet.close();
    await stopServer(ctx, server);
  }
}

/** Reads the admin page's live feed (server-sent events) the way an open page does, until closed. */
function openAdminFeed(adminPort: number): { close(): void } {
  const req = http.get({ host: "127.0.0.1", port: adminPort, path: "/feed" }, (res) => res.resume());
  req.on("error", () => {});
  return { close: () => req.destroy() };
}

/** Opens `total` connections with a live progress line; fails when the server dies meanwhile. */
export async function connectWithProgress(
  ctx: RunContext,
  s: Session,
  protocol: Protocol,
  total: number,
): Promise<ConnectResult> {
  const started = performance.now();
  const done = s.fleet.connect({ port: s.server.port, protocol, total, concurrency: ctx.config.concurrency });
  let finished = false;
  const settle = () => {
    finished = true;
  };
  done.then(settle, settle);
  while (!finished) {
    await Promise.race([done.catch(() => undefined), sleep(250)]);
    if (finished) break;
    const p = s.fleet.progress();
    const secs = (performance.now() - started) / 1000;
    ctx.progress.status(
      `${ctx.tag}: ${fmt(p.done)}/${fmt(total)} connected, ${p.failed} failed, ${secs.toFixed(1)} s`,
    );
  }
  const result = await done;
  if (result.timedOut)
    ctx.progress.log(
      `${ctx.tag}: handshakes given up after ${HANDSHAKE_TIMEOUT_MS / 1000} s: ${result.timedOut}`,
    );
  return result;
}

export interface CpuUsage {
  /** Load-client processes, in % of one core. */
  clientCpuPct: number;
  /** The server's process tree, in % of one core. */
  serverCpuPct: number;
  /** Everything else on the machine (not the bench, not the server), in % of one core: noise if high. */
  otherCpuPct: number;
}

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU used between start() and read() by the load clients, the server tree, and the rest of the machine. */
export class CpuMeter {
  readonly #s: Session;
  #t0 = 0;
  #client0 = 0;
  #server0 = 0;
  #machine0 = 0;
  #self0 = 0;

  constructor(s: Session) {
    this.#s = s;
  }

  async start(): Promise<void> {
    this.#client0 = (await this.#s.fleet.status()).cpuMs;
    this.#server0 = treeCpuMs(this.#s.server.pid);
    this.#machine0 = machineBusyMs();
    this.#self0 = selfCpuMs();
    this.#t0 = performance.now();
  }

  async read(): Promise<CpuUsage> {
    const wall = Math.max(1, performance.now() - this.#t0);
    const client = (await this.#s.fleet.status()).cpuMs - this.#client0;
    const server = treeCpuMs(this.#s.server.pid) - this.#server0;
    const machine = machineBusyMs() - this.#machine0;
    const other = Math.max(0, machine - client - server - (selfCpuMs() - this.#self0));
    const pct = (ms: number) => (100 * ms) / wall;
    return { clientCpuPct: pct(client), serverCpuPct: pct(server), otherCpuPct: pct(other) };
  }
}

/** Throws when the server under test is no longer running. */
export function assertAlive(server: ServerProcess): void {
  if (!server.running) throw new Error(`server died:\n${server.tail()}`);
}

export interface RssDelta<T> {
  /** What the measured action returned. */
  result: T;
  beforeBytes: number;
  afterBytes: number;
}

/**
 * RSS of the server's tree before and after `open` (which opens connections), each read after a pause:
 * `beforeMs` for the fresh server to settle, `afterMs` for it to settle again (and its GC to catch up).
 */
export async function rssDelta<T>(
  s: Session,
  beforeMs: number,
  afterMs: number,
  open: () => Promise<T>,
): Promise<RssDelta<T>> {
  await sleep(beforeMs);
  const beforeBytes = treeRssBytes(s.server.pid);
  const result = await open();
  await sleep(afterMs);
  assertAlive(s.server);
  return { result, beforeBytes, afterBytes: treeRssBytes(s.server.pid) };
}

/** The highest RSS of the server's tree while it runs, sampled every 100 ms: what a connection storm needs. */
export class RssPeak {
  #peak = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(pid: number) {
    const sample = () => {
      this.#peak = Math.max(this.#peak, treeRssBytes(pid));
    };
    sample();
    this.#timer = setInterval(sample, 100);
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.#peak;
  }
}

/** KiB of RSS per connection; NaN when none opened (no figure rather than a meaningless one). */
export function kibPerConn(beforeBytes: number, afterBytes: number, opened: number): number {
  return opened > 0 ? (afterBytes - beforeBytes) / 1024 / opened : Number.NaN;
}
