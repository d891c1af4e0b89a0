/**
 * Real redis-server processes for the tests and the bench: one on a free loopback port in its own temp dir (no
 * persistence unless asked), or a Redis Cluster of several; stopped by pid, killed if this process exits first.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./free-port.js";
import { requireTool, which } from "./tools.js";

const run = promisify(execFile);

/** Every redis-server this process started and has not seen exit: killed if the test process exits early. */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Paths of redis-server and redis-cli; throws one line naming the package when either is missing. */
function redisBins(): { server: string; cli: string } {
  return { server: requireTool("redis-server"), cli: requireTool("redis-cli", "redis-tools") };
}

/** Sends PING and resolves true on +PONG (false on refusal, LOADING, or no answer within 500 ms). */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on("error", () => done(false));
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}

/** Runs redis-cli against one port and returns its output (for assertions: PUBSUB, CLUSTER, GET). */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(redisBins().cli, ["-h", "127.0.0.1", "-p", String(port), ...args]);
  return stdout.trim();
}

/** One real redis-server on a free loopback port, in its own temp dir, no persistence. Stopped by PID. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  readonly #extra: string[];
  #child: ChildProcess | null = null;
  readonly log: string[] = [];

  constructor(port: number, dir: string, extra: string[] = []) {
    this.port = port;
    this.dir = dir;
    this.#extra = extra;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts (or restarts, on the same port) and resolves once it answers PING. */
  async start(timeoutMs = 10_000): Promise<this> {
    if (this.#child) throw new Error(`redis on ${this.port} is already running`);
    const child = spawn(
      redisBins().server,
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        ...this.#extra,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    child.stdout?.on("data", (d: Buffer) => this.log.push(d.toString()));
    child.stderr?.on("data", (d: Buffer) => this.log.push(d.toString()));
    child.once("exit", () => {
      if (this.#child === child) this.#child = null;
    });
    live.add(child);
    child.once("exit", () => live.delete(child));
    const deadline = Date.now() + timeoutMs;
    while (!(await ping(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`redis-server on ${this.port} did not start: ${this.log.join("").slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return this;
  }

  /** Kills the process by PID with `signal` and waits for it to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, "exit");
    child.kill(signal);
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops it and removes its temp dir. */
  async destroy(): Promise<void> {
    await this.stop("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts one redis-server on a free port. */
export async function startRedis(extra: string[] = []): Promise<RedisServer> {
  redisBins(); // one clear line, before a temp dir is made, when Redis is missing
  const dir = mkdtempSync(join(tmpdir(), "switchboard-redis-"));
  return new RedisServer(await freePort(), dir, extra).start();
}

/** A Redis Cluster of `masters` redis-server processes, all slots assigned, each master with `replicas` replicas. */
export class RedisCluster {
  /** The masters as created (after a failover, one of `replicas` may own a master's slots). */
  readonly nodes: RedisServer[];
  readonly replicas: RedisServer[];
  constructor(nodes: RedisServer[], replicas: RedisServer[] = []) {
    this.nodes = nodes;
    this.replicas = replicas;
  }

  /** Comma-separated seed URLs for --redis with --redis-cluster. */
  get url(): string {
    return [...this.nodes, ...this.replicas].map((n) => n.url).join(",");
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.nodes, ...this.replicas].map((n) => n.destroy()));
  }
}

export async function startRedisCluster(
  masters = 3,
  o: { replicas?: number; timeoutMs?: number } = {},
): Promise<RedisCluster> {
  const replicas = o.replicas ?? 0;
  const { cli } = redisBins();
  const nodes: RedisServer[] = [];
  const deadline = Date.now() + (o.timeoutMs ?? 20_000);
  const waitFor = async (port: number, command: string[], text: string) => {
    while (!(await redisCli(port, ...command)).includes(text)) {
      if (Date.now() > deadline) throw new Error(`redis ${port}: no ${text} in ${command.join(" ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const dir = mkdtempSync(join(tmpdir(), "switchboard-redis-cluster-"));
      const node = new RedisServer(await freePort(), dir, [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        join(dir, "nodes.conf"),
        "--cluster-node-timeout",
        "2000",
      ]);
      nodes.push(node);
      await node.start();
    }
    await run(cli, [
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    for (const node of nodes) await waitFor(node.port, ["CLUSTER", "INFO"], "cluster_state:ok");
    // redis-cli chooses which nodes become replicas: ask each.
    const roles = await Promise.all(nodes.map((n) => redisCli(n.port, "ROLE")));
    const isMaster = nodes.map((_, i) => roles[i]?.startsWith("master") === true);
    const replicaNodes = nodes.filter((_, i) => !isMaster[i]);
    for (const node of replicaNodes)
      await waitFor(node.port, ["INFO", "replication"], "master_link_status:up");
    return new RedisCluster(
      nodes.filter((_, i) => isMaster[i]),
      replicaNodes,
    );
  } catch (err) {
    await Promise.all(nodes.map((n) => n.destroy()));
    throw err;
  }
}

/** Whether redis-server is installed (the bench skips its Redis scenarios without it). */
export function redisInstalled(): boolean {
  return which("redis-server") !== null;
}
