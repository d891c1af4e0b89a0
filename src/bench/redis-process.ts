/**
 * A throwaway redis-server for scenario G: a free loopback port, its own temp dir, no persistence, stopped by
 * pid. The test helper reuses freePort (src/ must not import test code, the other way round is fine).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether `redis-server` is on the PATH. */
export function redisInstalled(): boolean {
  return spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;
}

/** A free loopback port: bind port 0, read it, release it (`--port 0` would disable TCP in Redis). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

export class RedisProcess {
  /** Redis servers started and not yet stopped, so an interrupted bench can stop them by pid. */
  static readonly live = new Set<RedisProcess>();
  readonly port: number;
  readonly #dir: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  #log = "";

  private constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
    this.#child = spawn(
      "redis-server",
      [
        ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        ...["--daemonize", "no", "--dir", dir],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    RedisProcess.live.add(this);
    this.#exited = new Promise<void>((resolve) => {
      this.#child.once("exit", () => resolve());
      this.#child.once("error", (err) => {
        this.#log += `spawn error: ${err.message}\n`;
        resolve();
      });
    }).then(() => {
      RedisProcess.live.delete(this);
    });
    const keep = (d: Buffer) => {
      this.#log = (this.#log + d.toString()).slice(-4000);
    };
    this.#child.stdout?.on("data", keep);
    this.#child.stderr?.on("data", keep);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#child.pid ?? 0;
  }

  /** Starts redis-server and resolves once it logged "Ready to accept connections". */
  static async start(timeoutMs = 10_000): Promise<RedisProcess> {
    const dir = mkdtempSync(join(tmpdir(), "switchboard-bench-redis-"));
    const redis = new RedisProcess(await freePort(), dir);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within ${timeoutMs} ms`)), timeoutMs);
      redis.#child.stdout?.on("data", () => {
        if (redis.#log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      void redis.#exited.then(() => {
        clearTimeout(timer);
        reject(new Error("exited before ready"));
      });
    });
    try {
      await ready;
    } catch (err) {
      await redis.stop();
      throw new Error(`redis-server: ${(err as Error).message}\n${redis.#log.slice(-500)}`);
    }
    return redis;
  }

  /** SIGTERM by pid, SIGKILL after `graceMs`; then removes the temp dir. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null && this.pid) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
