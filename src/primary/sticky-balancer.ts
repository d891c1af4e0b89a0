import cluster, { type Worker } from "node:cluster";
import type { Server, Socket } from "node:net";
import { errorReply } from "../errors.js";
import { endWithJson } from "../http-reply.js";
import type { Logger } from "../log.js";
import { SID_PARAM, workerOfSession } from "../session-id.js";

export type BalancerDeps = {
  /** The least-loaded worker that accepts new connections, if any. */
  pickWorker(): Worker | undefined;
  /** Answers /health and /ready directly from the primary, which knows the truth about its workers. */
  probe(path: string): { status: number; body: unknown } | null;
  /** True once SIGTERM/SIGINT started a drain: new connections get 503. */
  refusing(): boolean;
  log: Logger;
};

const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_TIMEOUT_MS = 10_000;
const HEAD_END = Buffer.from("\r\n\r\n");

type Handle = { reading?: boolean; readStop?: () => number; readStart?: () => number };

type PendingHandle = { handle?: { close?: () => void; destroy?: () => void } | null };

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
 */
export class StickyBalancer {
  readonly #deps: BalancerDeps;
  /** Connections handed to each worker since its last stats report, to spread a burst of connects. */
  readonly #recent = new Map<number, number>();

  constructor(server: Server, deps: BalancerDeps) {
    this.#deps = deps;
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

  #accept(socket: Socket): void {
    const chunks: Buffer[] = [];
    let length = 0;
    socket.setTimeout(HEAD_TIMEOUT_MS, () => socket.destroy());
    socket.on("error", () => socket.destroy());
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks, length);
      const end = head.indexOf(HEAD_END);
      // Too large whether or not its end came in the same read (a worker's parser would refuse it anyway).
      if (end > MAX_HEAD_BYTES || (end === -1 && length > MAX_HEAD_BYTES)) {
        socket.off("data", onData);
        const refusal = errorReply("headers_too_large", `request headers exceed ${MAX_HEAD_BYTES} bytes`);
        return this.#reply(socket, refusal);
      }
      if (end === -1) return;
      socket.off("data", onData);
      this.#route(socket, head, head.subarray(0, end).toString("latin1"));
    };
    socket.on("data", onData);
  }

  #route(socket: Socket, bytes: Buffer, head: string): void {
    const requestLine = head.slice(0, head.indexOf("\r\n"));
    const target = requestLine.split(" ")[1] ?? "/";
    const path = target.split("?", 1)[0] ?? "/";
    const probe = this.#deps.probe(path);
    if (probe) return this.#reply(socket, probe);
    if (this.#deps.refusing()) return this.#reply(socket, errorReply("unavailable", "server is draining"));
    const sid = path.startsWith("/socket.io/") ? SID_PARAM.exec(target)?.[1] : undefined;
    const bound = sid === undefined ? undefined : workerOfSession(sid);
    const worker = (bound !== undefined ? cluster.workers?.[bound] : undefined) ?? this.#deps.pickWorker();
    if (!worker?.isConnected()) return this.#reply(socket, errorReply("unavailable", "no worker is live"));
    this.#handOff(socket, worker, bytes);
  }

  #handOff(socket: Socket, worker: Worker, bytes: Buffer): void {
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
    socket.setTimeout(0);
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

  #reply(socket: Socket, { status, body }: { status: number; body: unknown }): void {
    socket.removeAllListeners("data");
    // Keep reading what the client still sends (the rest of an oversized head): closing with unread bytes would
    // reset the connection and could cost the client the answer. Whoever does not close in time is cut off.
    socket.resume();
    socket.setTimeout(HEAD_TIMEOUT_MS, () => socket.destroy());
    endWithJson(socket, status, body);
  }
}
