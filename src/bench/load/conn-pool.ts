/**
 * The connections of one load-client process: opens them with bounded concurrency, subscribes them, counts
 * acks, errors and drops, and feeds deliveries into DeliveryStats.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ClientConn, type ConnHooks, STATE_NAMES } from "./client-conn.js";
import { DeliveryStats } from "./delivery-stats.js";
import {
  type ConnectCommand,
  type ConnectResult,
  HANDSHAKE_TIMEOUT_MS,
  type StatusResult,
  type SubscribeCommand,
  type SubscribeResult,
} from "./ipc-messages.js";

const POLL_MS = 20;
const SWEEP_EVERY_MS = 500;

export class ConnPool implements ConnHooks {
  readonly stats = new DeliveryStats();
  readonly #conns: ClientConn[] = [];
  #firstIndex = 0;
  #open = 0;
  #failed = 0;
  #dropped = 0;
  #acks = 0;
  #errors = 0;
  #closing = false;
  #lastOpenAt = 0;
  /** Called on every open/failure while connecting (for progress). */
  onProgress: ((done: number, failed: number, final?: boolean) => void) | undefined;

  onOpen(): void {
    this.#open++;
    this.#lastOpenAt = performance.now();
    this.onProgress?.(this.#open, this.#failed);
  }

  onAck(): void {
    this.#acks++;
  }

  onServerError(): void {
    this.#errors++;
  }

  onPayload(buf: Buffer, start: number, end: number, nowMs: number): boolean {
    return this.stats.onPayload(buf, start, end, nowMs);
  }

  onClose(_conn: ClientConn, hadOpened: boolean): void {
    if (this.#closing) return;
    if (hadOpened) {
      this.#open--;
      this.#dropped++;
    } else {
      this.#failed++;
      this.onProgress?.(this.#open, this.#failed);
    }
  }

  /** Opens `count` connections, at most `concurrency` handshakes at a time; each gets HANDSHAKE_TIMEOUT_MS. */
  async connect(c: ConnectCommand): Promise<ConnectResult> {
    this.#firstIndex = c.firstIndex;
    const start = performance.now();
    const stuckAt = [0, 0, 0];
    let started = 0;
    let lastSweep = start;
    // Bounded: every connection settles (opens, fails or times out) within HANDSHAKE_TIMEOUT_MS of its start.
    for (;;) {
      const settled = this.#open + this.#failed + this.#dropped;
      while (started < c.count && started - settled < c.concurrency) {
        const localAddress = c.localAddresses[started % c.localAddresses.length] ?? "127.0.0.1";
        this.#conns.push(new ClientConn({ port: c.port, protocol: c.protocol, localAddress }, this));
        started++;
      }
      if (settled >= c.count) break;
      const now = performance.now();
      if (now - lastSweep > SWEEP_EVERY_MS) {
        lastSweep = now;
        for (const conn of this.#conns) {
          if (!conn.opened && !conn.socket.destroyed && now - conn.startedAt > HANDSHAKE_TIMEOUT_MS) {
            stuckAt[conn.state] = (stuckAt[conn.state] ?? 0) + 1;
            conn.destroy();
          }
        }
      }
      await sleep(started < c.count ? 1 : POLL_MS);
    }
    this.onProgress?.(this.#open, this.#failed, true);
    const timedOut = stuckAt
      .map((n, state) => (n > 0 ? `${n} stuck at ${STATE_NAMES[state]}` : ""))
      .filter(Boolean)
      .join(", ");
    return {
      opened: this.#open,
      failed: c.count - this.#open,
      elapsedMs: (this.#lastOpenAt || performance.now()) - start,
      ...(timedOut ? { timedOut } : {}),
    };
  }

  /** Subscribes every open connection and waits for as many acks/errors, or the timeout. */
  async subscribe(c: SubscribeCommand): Promise<SubscribeResult> {
    const acks0 = this.#acks;
    const errors0 = this.#errors;
    const deadline = performance.now() + c.timeoutMs;
    let sent = 0;
    for (let i = 0; i < this.#conns.length; i++) {
      const conn = this.#conns[i] as ClientConn;
      if (!conn.opened || conn.socket.destroyed) continue;
      const first = (this.#firstIndex + i) * c.perConnection;
      for (let k = 0; k < c.perConnection; k++) conn.subscribe(`${c.prefix}${(first + k) % c.channels}`);
      sent += c.perConnection;
      // Yield now and then so the event loop keeps reading while thousands of writes go out.
      if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
    }
    while (this.#acks - acks0 + this.#errors - errors0 < sent && performance.now() < deadline) {
      await sleep(POLL_MS);
    }
    return { acked: this.#acks - acks0, errors: this.#errors - errors0 };
  }

  status(): StatusResult {
    const cpu = process.cpuUsage();
    return {
      droppedByServer: this.#dropped,
      late: this.stats.late,
      unparsed: this.stats.unparsed,
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBytes: process.memoryUsage.rss(),
    };
  }

  close(): void {
    this.#closing = true;
    for (const conn of this.#conns) conn.destroy();
    this.#conns.length = 0;
  }
}
