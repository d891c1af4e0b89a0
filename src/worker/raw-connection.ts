import type { Socket } from "node:net";
import type { WebSocket } from "ws";
import type { Claims } from "./auth.js";
import { ClientMember } from "./client-member.js";
import type { FrameFlusher } from "./frame-flusher.js";

/** One raw /ws client: its outgoing frame queue and heartbeat flag, besides what every client holds. */
export class RawConnection extends ClientMember {
  readonly ws: WebSocket;
  closed = false;
  /** Cleared on each heartbeat ping, set by the pong. */
  alive = true;
  #socket: Socket;
  #queue: Buffer[] | null = null;
  #queuedBytes = 0;
  readonly #flusher: FrameFlusher;
  readonly #onSlow: (conn: RawConnection) => void;

  constructor(
    ws: WebSocket,
    socket: Socket,
    claims: Claims | null,
    flusher: FrameFlusher,
    onSlow: (conn: RawConnection) => void,
    rate: number,
  ) {
    super(claims, rate);
    this.ws = ws;
    this.#socket = socket;
    this.#flusher = flusher;
    this.#onSlow = onSlow;
  }

  get protocol(): "raw" {
    return "raw";
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
