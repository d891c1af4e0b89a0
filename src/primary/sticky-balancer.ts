import cluster, { type Worker } from "node:cluster";
import type { Server, Socket } from "node:net";
import { errorReply } from "../errors.js";
import { endWithJson } from "../http-reply.js";
import type { Logger } from "../log.js";
import { SID_PARAM, workerOfSession } from "../session-id.js";

export type BalancerLimits = {
  /** Connections per host, the primary's own and those open in workers; 0 = unlimited. */
  maxConnections: number;
  /** Connections one remote address may have in the primary at once; 0 = unlimited. */
  maxConnectionsPerIp: number;
  /** New WebSocket / Socket.IO connections per second (token bucket, burst one second's worth); 0 = off. */
  acceptRate: number;
  /** Time a connection has to send its whole request head, from accept; not extended by bytes. */
  headerTimeoutMs: number;
};

export type BalancerDeps = {
  /** The least-loaded worker that accepts new connections, if any. */
  pickWorker(): Worker | undefined;
  /** False while the worker leaves the primary's heartbeat unanswered: a session on it gets 503, not a hang. */
  responsive(workerId: number): boolean;
  /** Client connections open in the workers, as their last stats reports said (raw WebSocket + Socket.IO). */
  workerConnections(): number;
  /** Answers /health and /ready directly from the primary, which knows the truth about its workers. */
  probe(path: string): { status: number; body: unknown } | null;
  /** True once SIGTERM/SIGINT started a drain: new connections get 503. */
  refusing(): boolean;
  limits: BalancerLimits;
  log: Logger;
};

/** Why the primary answered a connection itself instead of handing it to a worker (a metric label). */
export type RefusalReason =
  | "max_connections"
  | "max_connections_per_ip"
  | "accept_rate"
  | "header_timeout"
  | "headers_too_large"
  | "draining"
  | "no_worker"
  | "worker_unresponsive";

const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from("\r\n\r\n");
/**
 * After its own answer (a probe, a refusal) the primary keeps reading, and dropping, what the client still sends
 * — closing with unread bytes would reset the connection and could cost the client the answer — but only this
 * long: then it closes the socket whatever the client does.
 */
const REPLY_LINGER_MS = 2000;
/** The longest Retry-After a refusal suggests, seconds. */
const MAX_RETRY_AFTER_S = 30;

type Handle = { reading?: boolean; readStop?: () => number; readStart?: () => number };

type PendingHandle = { handle?: { close?: () => void; destroy?: () => void } | null };

type QueuedSend = {
  message?: { type?: unknown } | null;
  handle?: unknown;
  options?: unknown;
  callback?: (err: Error | null) => void;
};

/** A connection the primary holds: reading its request head, or finishing its own answer. */
type Held = { ip: string; deadline: NodeJS.Timeout | null; released: boolean };

/**
 * Node keeps a sent socket's fd open in the primary until the worker acknowledges it, and queues the sockets sent
 * meanwhile. A worker that dies before it takes them would leave those clients hanging: close what it never took.
 * Node closes the one in flight itself when the channel goes; the queued ones are still net.Sockets (destroy),
 * the one in flight a raw handle (close).
 */
function closeUndeliveredHandles(worker: Worker): void {
  const cp = worker.process as unknown as {
    _pendingMessage?: PendingHandle | null;
    _handleQueue?: PendingHandle[] | null;
  };
  cp._pendingMessage?.handle?.close?.();
  for (const queued of cp._handleQueue ?? []) {
    const handle = queued.handle;
    if (typeof handle?.destroy === "function") handle.destroy();
    else handle?.close?.();
  }
}

/**
 * A socket sent with its `server` set makes the worker track it in a list and send the primary a message
 * when it closes (for `server.getConnections()`, which we do not use): memory and IPC per connection.
 * Sent detached, it is a plain socket; the server's count is kept right by hand.
 */
function detachFromServer(socket: Socket): void {
  const s = socket as unknown as { server: { _connections: number } | null; _server: unknown };
  if (s.server) s.server._connections -= 1;
  s.server = null;
  s._server = null;
}

/**
 * Where the request head ends (the index of its \r\n\r\n in all bytes so far), looking only at the new chunk and
 * the last 3 bytes before it: a head that arrives a byte at a time costs linear time, not quadratic.
 */
function headEnd(before: Buffer | null, length: number, chunk: Buffer): number {
  for (let start = Math.max(0, length - 3); start < length; start++) {
    let k = 0;
    while (k < 4) {
      const at = start + k;
      const byte = at < length ? before?.[at] : chunk[at - length];
      if (byte !== HEAD_END[k]) break;
      k += 1;
    }
    if (k === 4) return start;
  }
  const i = chunk.indexOf(HEAD_END);
  return i === -1 ? -1 : length + i;
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one address. */
function addressOf(socket: Socket): string {
  const a = socket.remoteAddress ?? "";
  return a.startsWith("::ffff:") ? a.slice(7) : a;
}

/** Tokens for new connections: `rate` a second, at most one second's worth saved up. */
class AcceptBucket {
  readonly #rate: number;
  #tokens: number;
  #at = Date.now();
  /** Refusals in the current second, to spread their retries over the time the rate needs for them. */
  #refusedWindowStart = 0;
  #refusedInWindow = 0;

  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate;
  }

  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#at) * this.#rate) / 1000);
    this.#at = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }

  get tokens(): number {
    return Math.floor(this.#tokens);
  }

  /** Seconds to suggest to a refused client: spread over the seconds the refused demand needs at this rate. */
  retryAfter(): number {
    const now = Date.now();
    if (now - this.#refusedWindowStart >= 1000) {
      this.#refusedWindowStart = now;
      this.#refusedInWindow = 0;
    }
    this.#refusedInWindow += 1;
    return jitteredRetryAfter(Math.ceil(this.#refusedInWindow / this.#rate) + 1);
  }
}

/** 1 to `spread` (at least 3, at most MAX_RETRY_AFTER_S) seconds, uniformly: refused clients come back spread. */
function jitteredRetryAfter(spread: number): number {
  const s = Math.min(MAX_RETRY_AFTER_S, Math.max(3, spread));
  return 1 + Math.floor(Math.random() * s);
}

/**
 * The primary half of @socket.io/sticky, rewritten; workers still run the package's own `setupWorker`, and this
 * speaks its protocol ("sticky:connection" with the socket and its first bytes; the session messages workers send
 * back go unheard: the session id itself names its worker).
 *
 * Why not the package's `setupPrimary` (2.0.1), each fault tested in test/integration/sticky.test.ts:
 * - it sends a Buffer over IPC and the worker `unshift`s it, which only works with advanced serialization
 *   (with Node's default JSON serialization every request hangs up);
 * - it picks among all of `cluster.workers`, including workers still starting and workers draining in a rolling
 *   reload, so connections land where nobody accepts them;
 * - it matches `sid=` anywhere in the headers (a `Cookie: sid=…` routes a new session to a random dead end);
 * - it learns a session's worker from an IPC message that races the client's next request ("Session ID
 *   unknown" under load): here the session id itself names the worker (worker/sticky-worker.ts);
 * - it relays any request with a body through the primary chunk by chunk (slow publish API), where pausing the
 *   socket before the hand-off is enough;
 * - with no live worker it crashes on `undefined.send` (socketio/socket.io-sticky#10, #12) — here it answers 503.
 * Keep-alive reuse across sessions (socketio/socket.io-sticky#8) is handled in the worker (worker/sticky-worker.ts).
 *
 * It also cannot be held open (test/integration/balancer-limits.test.ts): a connection has `--header-timeout` in
 * all to send its request head (then 408), the head is searched in linear time, a connection the primary answered
 * itself is closed at most REPLY_LINGER_MS later, and `--max-connections`, `--max-connections-per-ip` and
 * `--accept-rate` refuse with 503 and a jittered Retry-After, counted by reason.
 */
export class StickyBalancer {
  readonly #deps: BalancerDeps;
  readonly #limits: BalancerLimits;
  /** Connections handed to each worker since its last stats report, to spread a burst of connects. */
  readonly #recent = new Map<number, number>();
  /** Connections the primary holds (reading a head or finishing its own answer), in all and per address. */
  #held = 0;
  readonly #heldByIp = new Map<string, number>();
  readonly #bucket: AcceptBucket | null;
  readonly refused: Record<string, number> = {};

  constructor(server: Server, deps: BalancerDeps) {
    this.#deps = deps;
    this.#limits = deps.limits;
    this.#bucket = deps.limits.acceptRate > 0 ? new AcceptBucket(deps.limits.acceptRate) : null;
    server.on("connection", (socket) => this.#accept(socket));
    cluster.on("exit", (worker) => {
      this.#recent.delete(worker.id);
      closeUndeliveredHandles(worker);
    });
  }

  /** Connections recently handed to a worker and not yet in its reported count. */
  recentFor(workerId: number): number {
    return this.#recent.get(workerId) ?? 0;
  }

  resetRecent(workerId: number): void {
    this.#recent.set(workerId, 0);
  }

  /** Connections the primary holds right now: reading their request head, or finishing its own answer. */
  get held(): number {
    return this.#held;
  }

  /**
   * The host's open connections as the primary can know them: the ones it holds, the ones workers reported open
   * (raw WebSocket + Socket.IO, once a second) and the ones handed over since each worker's last report. Publish
   * API keep-alive connections count only until the next report (workers do not count them).
   */
  openConnections(): number {
    let recent = 0;
    for (const n of this.#recent.values()) recent += n;
    return this.#held + this.#deps.workerConnections() + recent;
  }

  status(): Record<string, unknown> {
    return {
      held: this.#held,
      heldAddresses: this.#heldByIp.size,
      openConnections: this.openConnections(),
      limits: this.#limits,
      ...(this.#bucket ? { acceptTokens: this.#bucket.tokens } : {}),
      refused: { ...this.refused },
    };
  }

  /**
   * Hands the connections queued for `worker` and not yet sent (Node sends one socket at a time and queues the
   * rest until the worker acknowledges the one in flight) to other workers: a worker that stopped answering would
   * leave them hanging until it is killed. The one in flight is already in the pipe; it is closed if it dies.
   */
  rehome(worker: Worker): number {
    const cp = worker.process as unknown as { _handleQueue?: QueuedSend[] | null };
    const queue = cp._handleQueue;
    if (!queue) return 0;
    const moved: QueuedSend[] = [];
    for (let i = queue.length - 1; i >= 0; i--) {
      const q = queue[i];
      if (q?.message?.type !== "sticky:connection" || typeof q.handle !== "object" || q.handle === null)
        continue;
      moved.unshift(q);
      queue.splice(i, 1);
    }
    this.#recent.set(worker.id, Math.max(0, this.recentFor(worker.id) - moved.length));
    for (const q of moved) {
      const socket = q.handle as Socket;
      const other = this.#deps.pickWorker();
      if (!other?.isConnected()) {
        socket.destroy();
        continue;
      }
      this.#recent.set(other.id, this.recentFor(other.id) + 1);
      try {
        other.send(q.message as never, socket, { keepOpen: false }, q.callback ?? (() => {}));
      } catch {
        socket.destroy();
      }
    }
    if (moved.length > 0)
      this.#deps.log.warn(
        { worker: worker.id, connections: moved.length },
        "connections moved off an unresponsive worker",
      );
    return moved.length;
  }

  #count(reason: RefusalReason): void {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1;
  }

  #hold(socket: Socket, ip: string): Held {
    const held: Held = { ip, deadline: null, released: false };
    this.#held += 1;
    this.#heldByIp.set(ip, (this.#heldByIp.get(ip) ?? 0) + 1);
    socket.once("close", () => this.#release(held));
    return held;
  }

  #release(held: Held): void {
    if (held.released) return;
    held.released = true;
    if (held.deadline) clearTimeout(held.deadline);
    this.#held -= 1;
    const n = (this.#heldByIp.get(held.ip) ?? 1) - 1;
    if (n > 0) this.#heldByIp.set(held.ip, n);
    else this.#heldByIp.delete(held.ip);
  }

  #accept(socket: Socket): void {
    socket.on("error", () => socket.destroy());
    const ip = addressOf(socket);
    const perIp = this.#limits.maxConnectionsPerIp;
    const crowded = perIp > 0 && (this.#heldByIp.get(ip) ?? 0) >= perIp;
    const held = this.#hold(socket, ip);
    if (crowded) {
      const refusal = errorReply("unavailable", `more than ${perIp} connections from one address`);
      return this.#refuse(socket, held, "max_connections_per_ip", refusal, jitteredRetryAfter(5));
    }
    // Bytes so far: the first read as it came (the usual case: a whole head in one read), later reads copied into
    // one growing buffer (a read of 1 byte costs one copy of 1 byte, not a join of everything so far).
    let first: Buffer | null = null;
    let joined: Buffer | null = null;
    let length = 0;
    held.deadline = setTimeout(() => {
      held.deadline = null;
      socket.off("data", onData);
      this.#count("header_timeout");
      // A connection that sent nothing is just closed (a browser's pre-connection, like HAProxy's
      // http-ignore-probes); one that is still sending its head gets a 408.
      if (length === 0) return socket.destroy();
      const refusal = errorReply(
        "request_timeout",
        `the request head did not arrive within ${this.#limits.headerTimeoutMs} ms`,
      );
      this.#reply(socket, held, refusal);
    }, this.#limits.headerTimeoutMs);
    const onData = (chunk: Buffer) => {
      const end = headEnd(joined ?? first, length, chunk);
      if (length === 0) first = chunk;
      else {
        const before = (joined ?? first) as Buffer;
        if (!joined || joined.length < length + chunk.length) {
          joined = Buffer.allocUnsafe(Math.max(4096, 2 * (length + chunk.length)));
          before.copy(joined, 0, 0, length);
          first = null;
        }
        chunk.copy(joined, length);
      }
      length += chunk.length;
      // Too large whether or not its end came in the same read (a worker's parser would refuse it anyway).
      if (end > MAX_HEAD_BYTES || (end === -1 && length > MAX_HEAD_BYTES)) {
        socket.off("data", onData);
        const refusal = errorReply("headers_too_large", `request headers exceed ${MAX_HEAD_BYTES} bytes`);
        return this.#refuse(socket, held, "headers_too_large", refusal);
      }
      if (end === -1) return;
      socket.off("data", onData);
      const bytes = joined ? joined.subarray(0, length) : (first as Buffer);
      this.#route(socket, held, bytes, bytes.subarray(0, end).toString("latin1"));
    };
    socket.on("data", onData);
  }

  #route(socket: Socket, held: Held, bytes: Buffer, head: string): void {
    const lineEnd = head.indexOf("\r\n");
    const requestLine = lineEnd === -1 ? head : head.slice(0, lineEnd);
    const target = requestLine.split(" ")[1] ?? "/";
    const path = target.split("?", 1)[0] ?? "/";
    const probe = this.#deps.probe(path);
    if (probe) return this.#reply(socket, held, probe);
    if (this.#deps.refusing()) {
      return this.#refuse(socket, held, "draining", errorReply("unavailable", "server is draining"));
    }
    const socketIo = path.startsWith("/socket.io/");
    const sid = socketIo ? SID_PARAM.exec(target)?.[1] : undefined;
    const bound = sid === undefined ? undefined : workerOfSession(sid);
    const owner = bound !== undefined ? cluster.workers?.[bound] : undefined;
    if (owner) {
      // A request of a session that lives: no new client, not limited; its worker is the only one that knows it.
      if (!this.#deps.responsive(owner.id)) {
        const refusal = errorReply("unavailable", "the session's worker is not answering");
        return this.#refuse(socket, held, "worker_unresponsive", refusal);
      }
      if (!owner.isConnected()) return this.#noWorker(socket, held);
      return this.#handOff(socket, held, owner, bytes);
    }
    const max = this.#limits.maxConnections;
    if (max > 0 && this.openConnections() > max) {
      const refusal = errorReply("unavailable", `the server holds its maximum of ${max} connections`);
      return this.#refuse(socket, held, "max_connections", refusal, jitteredRetryAfter(5));
    }
    // New clients (a /ws upgrade, a Socket.IO handshake) take a token; the publish API and probes never wait.
    if (this.#bucket && (path === "/ws" || socketIo) && !this.#bucket.take()) {
      const refusal = errorReply("unavailable", "too many new connections: retry later");
      return this.#refuse(socket, held, "accept_rate", refusal, this.#bucket.retryAfter());
    }
    const worker = this.#deps.pickWorker();
    if (!worker?.isConnected()) return this.#noWorker(socket, held);
    this.#handOff(socket, held, worker, bytes);
  }

  #noWorker(socket: Socket, held: Held): void {
    this.#refuse(socket, held, "no_worker", errorReply("unavailable", "no worker is live"));
  }

  #handOff(socket: Socket, held: Held, worker: Worker, bytes: Buffer): void {
    // Stop reading in the primary before the fd moves, for good: bytes read here after this point would be lost
    // (child_process replaces the handle's onread with a no-op once the socket is sent, and a socket queued behind
    // another hand-off to the same worker waits). Pausing is not enough: the stream's read-ahead arms reading again
    // on the next tick, so the handle's readStart becomes a no-op.
    socket.pause();
    const handle = (socket as unknown as { _handle?: Handle })._handle;
    if (handle?.readStop) {
      handle.reading = false;
      handle.readStop();
      handle.readStart = () => 0;
    }
    this.#release(held);
    socket.removeAllListeners("error");
    detachFromServer(socket);
    this.#recent.set(worker.id, this.recentFor(worker.id) + 1);
    try {
      worker.send({ type: "sticky:connection", data: bytes }, socket, { keepOpen: false }, (err) => {
        if (err) socket.destroy();
      });
    } catch (err) {
      this.#deps.log.warn({ err, worker: worker.id }, "connection hand-off failed");
      socket.destroy();
    }
  }

  /** An answer of the primary's own instead of a hand-off, counted by reason; Retry-After when given. */
  #refuse(
    socket: Socket,
    held: Held,
    reason: RefusalReason,
    answer: { status: number; body: unknown },
    retryAfterS?: number,
  ): void {
    this.#count(reason);
    this.#reply(socket, held, answer, retryAfterS === undefined ? "" : `Retry-After: ${retryAfterS}\r\n`);
  }

  /** The primary's own answer, then the socket is closed: by the client, or by us REPLY_LINGER_MS later. */
  #reply(
    socket: Socket,
    held: Held,
    { status, body }: { status: number; body: unknown },
    headers = "",
  ): void {
    if (held.deadline) clearTimeout(held.deadline);
    held.deadline = null;
    socket.removeAllListeners("data");
    // Keep reading what the client still sends (the rest of an oversized head, a pipelined request): closing
    // with unread bytes would reset the connection and could cost the client the answer.
    socket.resume();
    const linger = setTimeout(() => socket.destroy(), REPLY_LINGER_MS);
    socket.once("close", () => clearTimeout(linger));
    endWithJson(socket, status, body, headers);
  }
}
