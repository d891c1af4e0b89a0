import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Member } from "./channel-registry.js";
import type { FrameFlusher } from "./frame-flusher.js";
import { TokenBucket } from "./token-bucket.js";

export type Claims = { sub?: string; channels?: string[] };

/**
 * One raw /ws client: its subscriptions, its outgoing frame queue, its rate budget and heartbeat flag. Kept
 * small: idle connections are most of a server's memory, so the channel set is made on first use.
 */
export class RawConnection implements Member {
  readonly ws: WebSocket;
  readonly claims: Claims | null;
  closed = false;
  /** Cleared on each heartbeat ping, set by the pong. */
  alive = true;
  #socket: Socket;
  #queue: Buffer[] | null = null;
  #queuedBytes = 0;
  readonly budget: TokenBucket;
  readonly #flusher: FrameFlusher;
  readonly #onSlow: (conn: RawConnection) => void;
  #channels: Set<string> | null = null;

  constructor(
    ws: WebSocket,
    socket: Socket,
    claims: Claims | null,
    flusher: FrameFlusher,
    onSlow: (conn: RawConnection) => void,
    rate: number,
  ) {
    this.ws = ws;
    this.#socket = socket;
    this.claims = claims;
    this.#flusher = flusher;
    this.#onSlow = onSlow;
    this.budget = new TokenBucket(rate);
  }

  get protocol(): "raw" {
    return "raw";
  }

  get channels(): Set<string> {
    this.#channels ??= new Set();
    return this.#channels;
  }

  /** Queues one encoded frame; the same Buffer may be queued on thousands of connections. */
  send(frame: Buffer, maxBufferedBytes: number): void {
    if (this.closed) return;
    if (this.#socket.writableLength + this.#queuedBytes + frame.length > maxBufferedBytes) {
      this.#onSlow(this);
      return;
    }
    if (this.#queue === null) {
      this.#queue = [frame];
      this.#flusher.mark(this);
    } else this.#queue.push(frame);
    this.#queuedBytes += frame.length;
  }

  /** Writes the queued frames in one write; returns how many. */
  flush(): number {
    const queue = this.#queue;
    this.#queue = null;
    this.#queuedBytes = 0;
    if (queue === null || this.closed || !this.#socket.writable) return 0;
    if (queue.length === 1) {
      this.#socket.write(queue[0] as Buffer);
      return 1;
    }
    this.#socket.cork();
    for (const frame of queue) this.#socket.write(frame);
    this.#socket.uncork();
    return queue.length;
  }
}
