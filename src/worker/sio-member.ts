import type { Socket as NetSocket } from "node:net";
import type { Socket } from "socket.io";
import { encodeTextFrame } from "../protocol/server-frames.js";
import type { Claims } from "./auth.js";
import { ClientMember } from "./client-member.js";
import type { FrameFlusher } from "./frame-flusher.js";

/**
 * One live event of a channel (a message, a gap notice) as Socket.IO would send it to every subscriber, encoded
 * once: the Socket.IO packet text (for a socket Engine.IO must write itself) and the same packet as a whole
 * WebSocket frame.
 */
export type SioOutgoing = { text: string; frame: Buffer };

/** `socket.emit(...args)` on the default namespace, `argsJson` being the JSON of the arguments without brackets. */
export function sioEvent(argsJson: string): SioOutgoing {
  const text = `2[${argsJson}]`;
  return { text, frame: encodeTextFrame(`4${text}`) };
}

/** What we read of Engine.IO's socket and ws's WebSocket (untyped internals, checked before each use). */
type EngineConn = {
  readyState: string;
  upgrading: boolean;
  writeBuffer: unknown[];
  transport: { name: string; socket?: WsInternals };
  write(text: string): void;
};
type WsInternals = { readyState: number; _socket?: NetSocket; _sender?: { _queue?: unknown[] } };

/** A Socket.IO socket as a channel member, with its own queue of channel messages for the worker's write passes. */
export class SioMember extends ClientMember {
  readonly socket: Socket;
  /** Channels whose resume history is still being sent: live events wait here and follow it. */
  held: Map<string, SioOutgoing[]> | null = null;
  #queue: SioOutgoing[] | null = null;
  readonly #flusher: FrameFlusher;

  constructor(socket: Socket, claims: Claims | null, rate: number, flusher: FrameFlusher) {
    super(claims, rate);
    this.socket = socket;
    this.#flusher = flusher;
  }

  override get id(): string {
    return this.socket.id;
  }

  get protocol(): "sio" {
    return "sio";
  }

  get closed(): boolean {
    return this.socket.disconnected;
  }

  /** Queues a live event of `channel`: behind that channel's history while it is still being sent. */
  sendLive(channel: string, event: SioOutgoing): void {
    const held = this.held?.get(channel);
    if (held) held.push(event);
    else this.send(event);
  }

  /** Queues an event for the next write pass. */
  send(message: SioOutgoing): void {
    if (this.#queue === null) {
      this.#queue = [message];
      this.#flusher.mark(this);
    } else this.#queue.push(message);
  }

  /**
   * Writes the queued messages. Over a plain WebSocket with nothing waiting in Engine.IO, as one write of
   * ready-made frames straight to the socket: Engine.IO would write each packet on its own, and one syscall per
   * frame is what a loaded worker spends its time on. Whatever Engine.IO already handed to the socket is ahead in
   * it, so order holds; when Engine.IO still holds packets (or the transport is polling, or upgrading), the
   * messages go behind them through Engine.IO.
   */
  flush(): number {
    const queue = this.#queue;
    this.#queue = null;
    if (queue === null || this.closed) return 0;
    const conn = this.socket.conn as unknown as EngineConn;
    const ws = conn.transport.name === "websocket" ? conn.transport.socket : undefined;
    const raw = ws?._socket;
    if (
      raw?.writable &&
      ws?.readyState === 1 &&
      conn.readyState === "open" &&
      !conn.upgrading &&
      conn.writeBuffer.length === 0 &&
      (ws._sender?._queue?.length ?? 0) === 0
    ) {
      raw.write(
        queue.length === 1 ? (queue[0] as SioOutgoing).frame : Buffer.concat(queue.map((m) => m.frame)),
      );
    } else {
      for (const m of queue) conn.write(m.text);
    }
    return queue.length;
  }
}
