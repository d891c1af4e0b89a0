/**
 * Builds the fleet of test/fleet/fleet-test.ts on this machine (root, `ip netns`) and takes it down again:
 *
 *   app1 198.18.0.11  app2 198.18.0.12  app3 198.18.0.13   Switchboard blue :8001 / green :8002 under pm2 (one
 *                                                           PM2_HOME per host), Redis master :6379 and the replica
 *                                                           of the previous host's master :6380
 *   lb1  198.18.0.5   lb2  198.18.0.6                       HAProxy with haproxy/haproxy.multi-host.cfg (addresses,
 *                                                           paths, log target and maxconn rewritten), runtime API
 *                                                           on <addr>:9999 and on a unix socket in the temp dir
 *   client 198.18.1.50                                      the agent: every client and publisher
 *
 * All on one bridge (/23). The app hosts and balancers are the private network 198.18.0.0/24, the `admin_src` of
 * the configuration; the client is outside it, so HAProxy does not honour its pin header.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { requireTool } from "../../src/harness/tools.js";
import { haproxyCommand, haproxyServers, Proc, replaceOnce, tempDir } from "../deploy/helpers.js";
import { ROOT, until } from "../helpers/server.js";
import { Network } from "./netns.js";

export const APPS = ["app1", "app2", "app3"] as const;
export type App = (typeof APPS)[number];
export const LBS = ["lb1", "lb2"] as const;
export type Lb = (typeof LBS)[number];
export const ADDR: Record<App | Lb | "client", string> = {
  app1: "198.18.0.11",
  app2: "198.18.0.12",
  app3: "198.18.0.13",
  lb1: "198.18.0.5",
  lb2: "198.18.0.6",
  client: "198.18.1.50",
};
export const API_KEY = "fleet-test-key";
export const DRAIN_TIMEOUT_MS = 3000;
const RUNTIME_PORT = 9999;
const REDIS_MASTER_PORT = 6379;
const REDIS_REPLICA_PORT = 6380;
export const REDIS_URL = APPS.map((a) => `redis://${ADDR[a]}:${REDIS_MASTER_PORT}`).join(",");

/** One redis-server of the cluster: where it runs, and the process. */
export interface RedisNode {
  app: App;
  port: number;
  /** The master this node replicates at the start (null: it is a master). */
  replicaOf: App | null;
  proc: Proc;
}

export interface PromoteRun {
  app: App;
  args: string[];
  code: number | null;
  out: string;
  ms: number;
}

/** A release whose server listens but never becomes ready (a broken deploy). */
const NEVER_READY_CLI = `import http from "node:http";
const server = http.createServer((req, res) => {
  res.writeHead(req.url === "/health" ? 200 : 503, { "content-type": "application/json" });
  res.end(req.url === "/health" ? '{"status":"ok"}' : '{"status":"starting"}');
});
server.listen(Number(process.env.PORT), process.env.HOST);
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => process.exit(0));
`;

export class Fleet {
  readonly net: Network;
  readonly tmp = tempDir("fleet");
  readonly redis: RedisNode[] = [];
  readonly haproxy = new Map<Lb, Proc>();
  agent: Agent | undefined;
  readonly brokenRelease: string;

  /**
   * The release every host runs, as /opt/switchboard/releases/… would be: a copy of the build (dist/, scripts/,
   * the process file) taken at the start, with node_modules linked. A rebuild of the checkout while the test runs
   * does not change what runs or what promote starts.
   */
  readonly release: string;

  private constructor(net: Network) {
    this.net = net;
    this.brokenRelease = path.join(this.tmp.dir, "broken-release");
    this.release = path.join(this.tmp.dir, "release");
    for (const part of ["dist", "scripts", "ecosystem.config.cjs", "package.json"])
      cpSync(path.join(ROOT, part), path.join(this.release, part), { recursive: true });
    symlinkSync(path.join(ROOT, "node_modules"), path.join(this.release, "node_modules"));
  }

  /** The network and every process; on failure, whatever was made is removed again before it throws. */
  static async start(log: (line: string) => void): Promise<Fleet> {
    for (const tool of ["haproxy", "redis-server", "ip"]) requireTool(tool);
    requireTool("redis-cli", "redis-tools");
    const net = Network.create();
    let fleet: Fleet;
    try {
      fleet = new Fleet(net);
    } catch (err) {
      net.cleanup();
      throw err;
    }
    try {
      for (const role of [...APPS, ...LBS, "client"] as const) fleet.net.addHost(role, ADDR[role]);
      let t = Date.now();
      await fleet.#startRedis();
      log(`redis cluster: 3 masters + 3 replicas up in ${Date.now() - t} ms`);
      t = Date.now();
      for (const lb of LBS) await fleet.startBalancer(lb);
      await Promise.all(APPS.map((app) => fleet.#startBlue(app)));
      await fleet.waitServers((name, s) => (name.endsWith("-blue") ? s.op === 2 : true), "every blue UP");
      log(`haproxy x2 and blue on 3 hosts up in ${Date.now() - t} ms`);
      mkdirSync(path.join(fleet.brokenRelease, "dist"), { recursive: true });
      writeFileSync(path.join(fleet.brokenRelease, "package.json"), '{"type":"module"}\n');
      writeFileSync(path.join(fleet.brokenRelease, "dist", "cli.js"), NEVER_READY_CLI);
      fleet.agent = await Agent.start(fleet.net);
      return fleet;
    } catch (err) {
      fleet.cleanup();
      throw err;
    }
  }

  /**
   * Synchronous and idempotent: kills every process of every namespace, deletes them, removes the temp dir. The
   * instances' pm2 logs are kept first in `<tmpdir>/switchboard-fleet-logs` (the last run's only), for a failure.
   */
  cleanup(): void {
    this.agent?.kill();
    this.net.cleanup();
    if (existsSync(this.tmp.dir)) {
      const keep = path.join(os.tmpdir(), "switchboard-fleet-logs");
      rmSync(keep, { recursive: true, force: true });
      for (const app of APPS) {
        const logs = path.join(this.tmp.dir, app, "pm2", "logs");
        if (existsSync(logs)) cpSync(logs, path.join(keep, app), { recursive: true });
      }
    }
    this.tmp.remove();
  }

  /** Every process still running in the fleet's namespaces is about to be killed: stop the orderly ones first. */
  async stop(): Promise<void> {
    this.agent?.kill();
    await Promise.all(APPS.map((app) => this.pm2(app, ["kill"]).catch(() => undefined)));
    for (const p of this.haproxy.values()) await p.stop("SIGTERM", 2000);
    for (const r of this.redis) await r.proc.stop("SIGTERM", 2000);
    this.cleanup();
  }

  spawnIn(role: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
    const [cmd, argv] = this.net.exec(role, command, args);
    return new Proc(cmd, argv, { cwd: ROOT, env });
  }

  /** The `redis` part of an instance's /status (admin port on the host's loopback), or null when it is not up. */
  redisStatus(app: App, adminPort: number): Record<string, unknown> | null {
    try {
      // Node itself fetches it inside the host's namespace (no curl on a fresh machine).
      const body = this.net.run(app, process.execPath, [
        "-e",
        `fetch("http://127.0.0.1:${adminPort}/status", { signal: AbortSignal.timeout(3000) })
          .then((r) => r.text()).then((t) => process.stdout.write(t))`,
      ]);
      return (JSON.parse(body) as { redis?: Record<string, unknown> }).redis ?? null;
    } catch {
      return null;
    }
  }

  redisCli(app: App, port: number, ...args: string[]): string {
    return this.net
      .run(app, requireTool("redis-cli", "redis-tools"), ["-h", ADDR[app], "-p", String(port), ...args])
      .trim();
  }

  async #startRedis(): Promise<void> {
    const server = requireTool("redis-server");
    const nodes: { app: App; port: number; replicaOf: App | null }[] = [];
    APPS.forEach((app, i) => {
      nodes.push({ app, port: REDIS_MASTER_PORT, replicaOf: null });
      // The replica of the previous host's master: no shard has both copies on one host.
      nodes.push({
        app,
        port: REDIS_REPLICA_PORT,
        replicaOf: APPS[(i + APPS.length - 1) % APPS.length] as App,
      });
    });
    for (const n of nodes) {
      const dir = path.join(this.tmp.dir, `redis-${n.app}-${n.port}`);
      mkdirSync(dir, { recursive: true });
      const proc = this.spawnIn(n.app, server, [
        "--port",
        String(n.port),
        "--bind",
        ADDR[n.app],
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        path.join(dir, "nodes.conf"),
        "--cluster-node-timeout",
        "2000",
        // Reached from the other hosts' addresses: the fleet's network has no route off the machine.
        "--protected-mode",
        "no",
        // The shards that are up keep serving while one is failing over (the default stops the whole cluster).
        "--cluster-require-full-coverage",
        "no",
      ]);
      this.redis.push({ ...n, proc });
    }
    for (const n of this.redis) {
      await until(
        () => {
          if (!n.proc.running) throw new Error(`redis ${n.app}:${n.port} exited: ${n.proc.tail()}`);
          try {
            return this.redisCli(n.app, n.port, "PING") === "PONG";
          } catch {
            return false;
          }
        },
        10_000,
        `redis ${n.app}:${n.port}`,
        50,
      );
    }
    const cli = requireTool("redis-cli", "redis-tools");
    const masters = this.redis.filter((n) => n.replicaOf === null);
    this.net.run("app1", cli, [
      "--cluster",
      "create",
      ...masters.map((m) => `${ADDR[m.app]}:${m.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ]);
    for (const r of this.redis.filter((n) => n.replicaOf !== null)) {
      const master = masters.find((m) => m.app === r.replicaOf) as RedisNode;
      const id = this.redisCli(master.app, master.port, "CLUSTER", "MYID");
      this.net.run("app1", cli, [
        "--cluster",
        "add-node",
        `${ADDR[r.app]}:${r.port}`,
        `${ADDR[master.app]}:${master.port}`,
        "--cluster-slave",
        "--cluster-master-id",
        id,
      ]);
    }
    await until(
      () =>
        this.redis.every((n) =>
          this.redisCli(n.app, n.port, "CLUSTER", "INFO").includes("cluster_state:ok"),
        ) &&
        this.redis
          .filter((n) => n.replicaOf !== null)
          .every((n) =>
            this.redisCli(n.app, n.port, "INFO", "replication").includes("master_link_status:up"),
          ),
      20_000,
      "cluster_state:ok on every node and every replica in sync",
      100,
    );
  }

  /** The master node (as started) of the shard that holds `slot`. */
  masterOfSlot(slot: number): RedisNode {
    const nodes = this.redisCli("app1", REDIS_MASTER_PORT, "CLUSTER", "NODES");
    for (const line of nodes.split("\n")) {
      const f = line.split(" ");
      if (!f[2]?.includes("master")) continue;
      const [addr, port] = (f[1]?.split("@")[0] ?? "").split(":");
      for (const range of f.slice(8)) {
        const [from, to] = range.split("-").map(Number) as [number, number];
        if (slot >= from && slot <= (to ?? from)) {
          const node = this.redis.find((n) => ADDR[n.app] === addr && n.port === Number(port));
          if (node) return node;
        }
      }
    }
    throw new Error(`no master holds slot ${slot}`);
  }

  lbDir(lb: Lb): string {
    return path.join(this.tmp.dir, lb);
  }

  /** The unix runtime socket of a balancer (the test reads HAProxy through it; promote uses the TCP one). */
  lbSocket(lb: Lb): string {
    return path.join(this.lbDir(lb), "admin.sock");
  }

  /** The shipped multi-host configuration with only addresses, paths, the log target and maxconn rewritten. */
  haproxyConfig(lb: Lb): string {
    const dir = this.lbDir(lb);
    let cfg = readFileSync(path.join(ROOT, "haproxy", "haproxy.multi-host.cfg"), "utf8");
    cfg = replaceOnce(cfg, "stats socket /run/haproxy/admin.sock", `stats socket ${this.lbSocket(lb)}`);
    cfg = replaceOnce(
      cfg,
      "stats socket ipv4@10.0.0.5:9999",
      `stats socket ipv4@${ADDR[lb]}:${RUNTIME_PORT}`,
    );
    cfg = replaceOnce(
      cfg,
      "server-state-file /var/lib/haproxy/server-state",
      `server-state-file ${dir}/server-state`,
    );
    cfg = replaceOnce(cfg, "chroot /var/lib/haproxy", `chroot ${dir}`);
    cfg = replaceOnce(cfg, /^(\s*)log \/dev\/log .*$/m, "$1log stderr format raw local0 warning");
    // The machine caps open files at 20,000 per process: HAProxy reserves about 2 x maxconn.
    cfg = replaceOnce(cfg, /^(\s*)maxconn \d+$/m, "$1maxconn 4000");
    cfg = replaceOnce(cfg, "10.0.0.0/24", "198.18.0.0/24");
    for (const app of APPS) {
      const n = app.slice(3);
      cfg = replaceOnce(cfg, `10.0.0.1${n}:8001`, `${ADDR[app]}:8001`);
      cfg = replaceOnce(cfg, `10.0.0.1${n}:8002`, `${ADDR[app]}:8002`);
    }
    if (/10\.0\.0\./.test(cfg.replace(/#.*$/gm, "")))
      throw new Error("an address of the example network is left");
    return cfg;
  }

  /** Starts (or starts again) one balancer with the shipped configuration, addresses rewritten. */
  async startBalancer(lb: Lb): Promise<void> {
    const dir = this.lbDir(lb);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "server-state"), "1\n");
    const cfgFile = path.join(dir, "haproxy.cfg");
    writeFileSync(cfgFile, this.haproxyConfig(lb));
    const check = this.net.run(lb, requireTool("haproxy"), ["-c", "-q", "-f", cfgFile]);
    if (check.trim()) throw new Error(`haproxy -c: ${check}`);
    const proc = this.spawnIn(lb, requireTool("haproxy"), ["-db", "-f", cfgFile]);
    this.haproxy.set(lb, proc);
    await until(
      async () => {
        if (!proc.running) throw new Error(`haproxy ${lb} exited: ${proc.tail()}`);
        const info = await haproxyCommand(this.lbSocket(lb), "show info").catch(() => "");
        return info.includes("Name: HAProxy");
      },
      10_000,
      `haproxy ${lb}`,
      100,
    );
  }

  /** The environment of pm2 and of promote on a host: what the ecosystem file and the server read. */
  env(app: App): NodeJS.ProcessEnv {
    return {
      ...process.env,
      PM2_HOME: path.join(this.tmp.dir, app, "pm2"),
      SWITCHBOARD_DIR: this.release,
      SWITCHBOARD_BLUE_DIR: this.release,
      SWITCHBOARD_GREEN_DIR: this.release,
      PM2_SILENT: "false",
      HOST: ADDR[app],
      REDIS_URL,
      REDIS_CLUSTER: "true",
      API_KEY,
      WORKERS: "1",
      DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
      // Bounds how long `pm2 start` waits for a release that never sends 'ready'.
      SWITCHBOARD_LISTEN_TIMEOUT_MS: "5000",
      SWITCHBOARD_PROMOTE_LOCK: path.join(this.tmp.dir, app, "promote.lock"),
      // A client resumes from history: it must hold what the stream publishes while a client is away (a drain
      // window, a dead link noticed, a reconnect through the other balancer): 1000 messages, ~40 s of the stream.
      HISTORY_SIZE: "1000",
      LOG_LEVEL: "info",
    };
  }

  /** `pm2 <args>` inside the host's namespace (its daemon, and so its apps, live there). */
  pm2(app: App, args: string[], timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
    return this.#runIn(app, path.join(ROOT, "node_modules", ".bin", "pm2"), args, this.env(app), timeoutMs);
  }

  #runIn(
    role: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    timeoutMs: number,
  ): Promise<{ code: number | null; out: string }> {
    const proc = this.spawnIn(role, command, args, env);
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
    let out = "";
    proc.child.stdout?.on("data", (c: Buffer) => {
      out += c;
    });
    proc.child.stderr?.on("data", (c: Buffer) => {
      out += c;
    });
    return proc.exited.then(({ code }) => {
      clearTimeout(timer);
      return { code, out };
    });
  }

  async #startBlue(app: App): Promise<void> {
    mkdirSync(path.join(this.tmp.dir, app), { recursive: true });
    const res = await this.pm2(app, [
      "start",
      path.join(this.release, "ecosystem.config.cjs"),
      "--only",
      "switchboard-blue",
    ]);
    if (res.code !== 0) throw new Error(`pm2 start blue on ${app}: ${res.out}`);
  }

  /** pm2's apps on a host: name, pid, status, exit code. */
  async apps(
    app: App,
  ): Promise<{ name: string; pid: number; status: string; exitCode: number | undefined }[]> {
    const { out } = await this.pm2(app, ["jlist"]);
    const list = JSON.parse(out.slice(out.indexOf("["))) as {
      name: string;
      pid: number;
      pm2_env: { status: string; exit_code?: number };
    }[];
    return list.map((a) => ({
      name: a.name,
      pid: a.pid,
      status: a.pm2_env.status,
      exitCode: a.pm2_env.exit_code,
    }));
  }

  /** Every server on both balancers: `${lb} ${server}` → {admin, op}. */
  async servers(): Promise<Map<string, { admin: number; op: number }>> {
    const out = new Map<string, { admin: number; op: number }>();
    for (const lb of LBS) {
      if (!this.haproxy.get(lb)?.running) continue;
      for (const [name, s] of await haproxyServers(this.lbSocket(lb), "switchboard"))
        out.set(`${lb} ${name}`, s);
    }
    return out;
  }

  /** Waits until every server on every running balancer passes `test`. */
  async waitServers(
    test: (name: string, s: { admin: number; op: number }) => boolean,
    what: string,
    timeoutMs = 20_000,
  ): Promise<void> {
    await until(
      async () => [...(await this.servers())].every(([key, s]) => test(key.split(" ")[1] ?? "", s)),
      timeoutMs,
      what,
      200,
    );
  }

  /**
   * scripts/promote on one host, inside its namespace, with every balancer's TCP runtime socket and frontend
   * (the layout of docs/deploy.md); `args` after the defaults.
   */
  async promote(app: App, args: string[], env: NodeJS.ProcessEnv = {}): Promise<PromoteRun> {
    const started = Date.now();
    const argv = [
      ...args,
      "--manager",
      "pm2",
      "--server",
      `${app}-{colour}`,
      "--check-host",
      ADDR[app],
      ...LBS.flatMap((lb) => ["--socket", `${ADDR[lb]}:${RUNTIME_PORT}`]),
      ...LBS.flatMap((lb) => ["--haproxy-url", `http://${ADDR[lb]}`]),
      // Remote balancers save their own state file.
      "--state-file",
      "",
      "--ready-timeout",
      "6000",
      "--stop-timeout",
      String(DRAIN_TIMEOUT_MS + 10_000),
    ];
    const res = await this.#runIn(
      app,
      path.join(this.release, "scripts", "promote"),
      argv,
      { ...this.env(app), ...env },
      90_000,
    );
    return { app, args, ...res, ms: Date.now() - started };
  }
}

/** The agent process in the client namespace, driven over IPC. */
export class Agent {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;
  #out: string[] = [];

  private constructor(child: ChildProcess) {
    this.#child = child;
    const keep = (c: Buffer) => {
      this.#out.push(...c.toString("utf8").split("\n").filter(Boolean));
      if (this.#out.length > 40) this.#out.splice(0, this.#out.length - 40);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("message", (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      if (m.ok) p?.resolve(m.result);
      else p?.reject(new Error(m.error));
    });
    child.once("exit", (code, signal) => {
      for (const p of this.#pending.values())
        p.reject(new Error(`agent exited (${code ?? signal}): ${this.#out.join("\n")}`));
      this.#pending.clear();
    });
  }

  static async start(net: Network): Promise<Agent> {
    const [cmd, argv] = net.exec("client", process.execPath, [
      "--import",
      "tsx",
      path.join(ROOT, "test", "fleet", "agent.ts"),
    ]);
    const child = spawn(cmd, argv, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      env: {
        ...process.env,
        FLEET_BALANCERS: LBS.map((lb) => `http://${ADDR[lb]}`).join(","),
        FLEET_API_KEY: API_KEY,
      },
    });
    const agent = new Agent(child);
    await new Promise<void>((resolve, reject) => {
      agent.#pending.set(0, { resolve: () => resolve(), reject });
      setTimeout(() => reject(new Error(`agent did not start: ${agent.#out.join("\n")}`)), 20_000).unref();
    });
    return agent;
  }

  call<T>(op: string, args: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`agent: ${op} not answered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#child.send({ id, op, args });
    });
  }

  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }
}
