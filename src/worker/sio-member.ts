import type { Socket as NetSocket } from "node:net";
import type { Socket } from "socket.io";
import { encodeTextFrame } from "../protocol/server-frames.js";
import type { Claims } from "./auth.js";
import { ClientMember } from "./client-member.js";
import type { FrameFlusher } from "./frame-flusher.js";

/** A live event held for a socket while its resume's history is being sent. */
export type Held = ["message", data: unknown, offset: number] | ["gap", info: Record<string, unknown>];

/**
 * One channel message as Socket.IO would send it to every socket of the room, encoded once: the Engine.IO packet
 * text (for a socket Engine.IO must write itself) and the same packet as a whole WebSocket frame.
 */
export type SioOutgoing = { text: string; frame: Buffer };

/** `socket.emit("message", channel, data, {offset})` for the default namespace, encoded once for every socket. */
export function sioMessage(channelJson: string, dataJson: string, offset: number): SioOutgoing {
  const text = `2["message",${channelJson},${dataJson},{"offset":${offset}}]`;
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
  held: Map<string, Held[]> | null = null;
  /** Since when its backlog has been above --max-buffered (0: it has not). */
  behindSince = 0;
  #queue: SioOutgoing[] | null = null;
  readonly #flusher: FrameFlusher;

  constructor(socket: Socket, claims: Claims | null, rate: number, flusher: FrameFlusher) {
    super(claims, rate);
    this.socket = socket;
    this.#flusher = flusher;
  }

  get protocol(): "sio" {
    return "sio";
  }

  get closed(): boolean {
    return this.socket.disconnected;
  }

  /** Queues a channel message for the next write pass. */
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
