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
  /** Channels whose history is being written: their live frames wait here, in order, until it is. */
  #held: Map<string, { frames: Buffer[]; bytes: number }> | null = null;
  readonly #flusher: FrameFlusher;
  readonly #onSlow: (conn: RawConnection) => void;

  constructor(
    ws: WebSocket,
    socket: Socket,
    claims: Claims | null,
    flusher: FrameFlusher,
    onSlow: (conn: RawConnection) => void,
    rate: number,
    serial?: number,
  ) {
    super(claims, rate, serial);
    this.ws = ws;
    this.#socket = socket;
    this.#flusher = flusher;
    this.#onSlow = onSlow;
  }

  get protocol(): "raw" {
    return "raw";
  }

  /** Queues one encoded frame (the same Buffer may be queued on thousands of connections), unless it is slow. */
  send(frame: Buffer, maxBufferedBytes: number): void {
    if (this.closed) return;
    if (this.isSlowConsumer(this.#socket.writableLength, this.#queuedBytes + frame.length, maxBufferedBytes))
      return this.#onSlow(this);
    if (this.#queue === null) {
      this.#queue = [frame];
      this.#flusher.mark(this);
    } else this.#queue.push(frame);
    this.#queuedBytes += frame.length;
  }

  /** Queues a live frame of `channel`: behind that channel's history while it is still being written. */
  sendLive(channel: string, frame: Buffer, maxBufferedBytes: number): void {
    const held = this.#held?.get(channel);
    if (held === undefined) return this.send(frame, maxBufferedBytes);
    held.frames.push(frame);
    held.bytes += frame.length;
    if (held.bytes > maxBufferedBytes) this.#onSlow(this);
  }

  /**
   * Writes a resume's history a chunk at a time, each once the socket took the one before, so a long replay stays
   * within the slow-consumer bound however little the client reads per turn; live frames of the channel wait
   * behind it (sendLive) and follow it in order.
   */
  async replay(channel: string, frames: Buffer[], maxBufferedBytes: number): Promise<void> {
    this.#held ??= new Map();
    this.#held.set(channel, { frames: [], bytes: 0 });
    const chunkBytes = Math.max(16 * 1024, Math.floor(maxBufferedBytes / 4));
    let i = 0;
    // Stops early when the connection closes or leaves the channel (an unsubscribe drops what is held, too).
    while (i < frames.length && !this.closed && this.channels.has(channel)) {
      let chunk = 0;
      while (i < frames.length && (chunk === 0 || chunk + (frames[i] as Buffer).length <= chunkBytes)) {
        const frame = frames[i++] as Buffer;
        chunk += frame.length;
        this.send(frame, maxBufferedBytes);
      }
      this.flush();
      await this.#taken();
    }
    const held = this.#held.get(channel)?.frames ?? [];
    this.#held.delete(channel);
    if (this.#held.size === 0) this.#held = null;
    if (this.channels.has(channel)) for (const frame of held) this.send(frame, maxBufferedBytes);
  }

  /** Resolves once the socket has no write it asked to wait for (or closed). */
  #taken(): Promise<void> {
    const socket = this.#socket;
    if (!socket.writableNeedDrain || this.closed) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((resolve) => {
      const done = () => {
        socket.off("drain", done);
        socket.off("close", done);
        resolve();
      };
      socket.on("drain", done);
      socket.on("close", done);
    });
  }

  /** Writes the queued frames in one write; returns how many. */
  flush(): number {
    const queue = this.#queue;
    const bytes = this.#queuedBytes;
    this.#queue = null;
    this.#queuedBytes = 0;
    if (queue === null || this.closed || !this.#socket.writable) return 0;
    // Several small frames as one buffer: one plain write costs less than a corked writev of many.
    this.#socket.write(queue.length === 1 ? (queue[0] as Buffer) : Buffer.concat(queue, bytes));
    return queue.length;
  }
}
