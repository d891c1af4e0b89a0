/**
 * Shared pieces of the deployment tests: free ports, temp dirs, real haproxy / pm2 processes stopped by pid, and
 * a test copy of the shipped HAProxy config with only addresses and paths rewritten. Redis, HTTP requests,
 * waiting and finding tools come from test/helpers, as in the integration tests.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { requireTool } from "../../src/harness/tools.js";
import { ROOT, until } from "../helpers/server.js";

export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), `switchboard-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** `count` distinct free loopback ports: all are held open until every one is chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    servers.push(server);
    ports.push((server.address() as net.AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/**
 * Replaces `from` by `to` in `text`, and throws unless it matched exactly once: a test copy must change
 * only what it names, and must notice when the shipped file no longer has it.
 */
export function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const pattern =
    typeof from === "string" ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gm") : from;
  const hits = text.match(
    new RegExp(pattern.source, pattern.flags.includes("g") ? pattern.flags : `${pattern.flags}g`),
  );
  if (hits?.length !== 1)
    throw new Error(`shipped config: expected exactly one match of ${pattern}, found ${hits?.length ?? 0}`);
  return text.replace(new RegExp(pattern.source, pattern.flags.replace("g", "")), to);
}

export interface HaproxyTestPaths {
  dir: string;
  frontendPort: number;
  statsPort: number;
  socket: string;
  stateFile: string;
  bluePort: number;
  greenPort: number;
}

/**
 * The shipped haproxy/haproxy.cfg with only these substituted: the frontend :80 and stats bind addresses
 * (free loopback ports), the runtime socket and state file paths (temp dir), the chroot (temp dir), the two
 * server ports, the syslog target (none here: logs to stderr), maxconn (a test machine's hard RLIMIT_NOFILE
 * may be far below the 2 x maxconn file descriptors HAProxy reserves); and when not root, the user/group and
 * chroot lines (only root can switch user). Every timeout, check, cookie and ACL is the shipped one.
 */
export function haproxyTestConfig(shipped: string, p: HaproxyTestPaths): string {
  let cfg = shipped;
  cfg = replaceOnce(cfg, /^(\s*)bind :80$/m, `$1bind 127.0.0.1:${p.frontendPort}`);
  cfg = replaceOnce(cfg, /^(\s*)bind 127\.0\.0\.1:8404$/m, `$1bind 127.0.0.1:${p.statsPort}`);
  cfg = replaceOnce(cfg, "stats socket /run/haproxy/admin.sock", `stats socket ${p.socket}`);
  cfg = replaceOnce(
    cfg,
    "server-state-file /var/lib/haproxy/server-state",
    `server-state-file ${p.stateFile}`,
  );
  cfg = replaceOnce(cfg, "chroot /var/lib/haproxy", `chroot ${p.dir}`);
  cfg = replaceOnce(cfg, /^(\s*)log \/dev\/log .*$/m, "$1log stderr format raw local0 warning");
  cfg = replaceOnce(cfg, / 127\.0\.0\.1:8001 /, ` 127.0.0.1:${p.bluePort} `);
  cfg = replaceOnce(cfg, / 127\.0\.0\.1:8002 /, ` 127.0.0.1:${p.greenPort} `);
  cfg = replaceOnce(cfg, /^(\s*)maxconn \d+$/m, "$1maxconn 4000");
  if (process.getuid?.() !== 0) {
    cfg = replaceOnce(cfg, /^\s*user haproxy$/m, "");
    cfg = replaceOnce(cfg, /^\s*group haproxy$/m, "");
    cfg = replaceOnce(cfg, /^(\s*)chroot .*$/m, "");
  }
  return cfg;
}

/** A child process we started, with the tail of its output for error messages. */
export class Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #out: string[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line) this.#out.push(line);
      if (this.#out.length > 60) this.#out.splice(0, this.#out.length - 60);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
      this.child.once("error", (err) => {
        this.#out.push(`spawn error: ${err.message}`);
        this.exit = { code: -1, signal: null };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  tail(): string {
    return this.#out.join("\n");
  }

  /** Sends `signal`, then SIGKILL after `graceMs`; resolves with the exit status. */
  async stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5000) {
    if (!this.running) return this.exit;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }
}

/** Connects to host:port; true when something accepts. */
export function canConnect(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect({ host, port });
    conn.setTimeout(1000, () => {
      conn.destroy();
      resolve(false);
    });
    conn.once("connect", () => {
      conn.destroy();
      resolve(true);
    });
    conn.once("error", () => resolve(false));
  });
}

/** One runtime API command on HAProxy's stats socket; the whole answer. */
export function haproxyCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ path: socket });
    let answer = "";
    conn.setEncoding("utf8");
    conn.setTimeout(5000, () => conn.destroy(new Error(`no answer to "${command}"`)));
    conn.once("connect", () => conn.end(`${command}\n`));
    conn.on("data", (chunk: string) => {
      answer += chunk;
    });
    conn.once("error", reject);
    conn.once("close", () => resolve(answer));
  });
}

/** Server name → {admin, op} from `show servers state <backend>`. */
export async function haproxyServers(socket: string, backend: string) {
  const text = await haproxyCommand(socket, `show servers state ${backend}`);
  const header = text.split("\n").find((l) => l.startsWith("# "));
  if (!header) throw new Error(`unexpected answer: ${text}`);
  const cols = header.slice(2).split(/\s+/);
  const out = new Map<string, { admin: number; op: number }>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (line.startsWith("#") || f.length < cols.length) continue;
    out.set(f[cols.indexOf("srv_name")] ?? "", {
      admin: Number(f[cols.indexOf("srv_admin_state")]),
      op: Number(f[cols.indexOf("srv_op_state")]),
    });
  }
  return out;
}

/** Starts `haproxy -db -f cfg` and waits until its runtime socket answers and the frontend accepts. */
export async function startHaproxy(cfgFile: string, socket: string, frontendPort: number): Promise<Proc> {
  const proc = new Proc(requireTool("haproxy"), ["-db", "-f", cfgFile]);
  try {
    await until(
      async () => {
        // Thrown, not retried: a haproxy that exited will not come up.
        if (!proc.running) throw new Error(`haproxy exited: ${proc.tail()}`);
        // The socket file may exist before haproxy listens on it (or be left from a previous run): retry.
        const info = existsSync(socket) ? await haproxyCommand(socket, "show info").catch(() => "") : "";
        return info.includes("Name: HAProxy") && (await canConnect(frontendPort));
      },
      10_000,
      "haproxy runtime socket and frontend",
      100,
    );
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  return proc;
}

/** pm2 from node_modules with its own PM2_HOME; `kill()` stops the daemon and every app it runs. */
export class Pm2 {
  readonly bin = path.join(ROOT, "node_modules", ".bin", "pm2");
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(home: string, env: NodeJS.ProcessEnv) {
    this.home = home;
    this.env = { ...process.env, ...env, PM2_HOME: home, PM2_SILENT: "false" };
  }

  /** Runs `pm2 <args>`; resolves with exit code and output (never rejects on a non-zero exit). */
  run(args: string[], timeoutMs = 90_000): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.bin, args, { env: this.env, cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c;
      });
      child.stderr.on("data", (c: Buffer) => {
        out += c;
      });
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.once("error", reject);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  /** `pm2 jlist`: name, pid, status, exit code of every app. */
  async list(): Promise<{ name: string; pid: number; status: string; exitCode: number | undefined }[]> {
    const { out } = await this.run(["jlist"]);
    const start = out.indexOf("[");
    const apps = JSON.parse(out.slice(start)) as {
      name: string;
      pid: number;
      pm2_env: { status: string; exit_code?: number };
    }[];
    return apps.map((a) => ({
      name: a.name,
      pid: a.pid,
      status: a.pm2_env.status,
      exitCode: a.pm2_env.exit_code,
    }));
  }

  /** pid of the pm2 daemon (from PM2_HOME/pm2.pid), or 0. */
  daemonPid(): number {
    try {
      return Number(readFileSync(path.join(this.home, "pm2.pid"), "utf8").trim()) || 0;
    } catch {
      return 0;
    }
  }

  async kill(): Promise<void> {
    await this.run(["kill"], 60_000);
  }
}

/** True while a process with this pid exists. */

export { descendants, isAlive } from "../../src/harness/process-tree.js";
