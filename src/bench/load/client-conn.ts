/**
 * One load-client connection over `net`: a hand-written WebSocket handshake, then either the raw JSON protocol
 * (/ws) or a minimal Engine.IO v4 / Socket.IO v5 client (/socket.io/, websocket transport only).
 * Reads go through `onread` into one buffer shared by every connection of the process (no stream machinery,
 * no Buffer per read); connections share one `ConnHooks` object, so each costs a socket and a few fields.
 */
import { connect, type Socket } from "node:net";
import { epochMs } from "../histogram.js";
import {
  encodeClientFrame,
  encodeClientText,
  type FrameSink,
  OP_CLOSE,
  OP_PING,
  OP_PONG,
  OP_TEXT,
  readFrames,
} from "./ws-frame.js";

export type Protocol = "ws" | "sio";

export interface ConnHooks {
  /** Handshake done (raw: 101 received; Socket.IO: namespace connected). */
  onOpen(conn: ClientConn): void;
  onAck(conn: ClientConn): void;
  onServerError(conn: ClientConn): void;
  /** Returns true when the payload was a timestamped delivery. */
  onPayload(buf: Buffer, start: number, end: number, nowMs: number): boolean;
  onClose(conn: ClientConn, hadOpened: boolean): void;
}

/** How far a connection got; reported for connections that failed to open. */
export enum ConnState {
  Connecting = 0,
  TcpConnected = 1,
  Upgraded = 2,
  Open = 3,
}

export const STATE_NAMES = ["TCP connect", "HTTP upgrade", "Socket.IO connect", "open"] as const;

const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);
const HEADER_END = Buffer.from("\r\n\r\n");
const EIO_PONG = encodeClientText("3");
const SIO_CONNECT = encodeClientText("40");
const CH_ZERO = 0x30; // '0'
const CH_ONE = 0x31; // '1'
const CH_TWO = 0x32; // '2'
const CH_THREE = 0x33; // '3'
const CH_FOUR = 0x34; // '4'
const MAX_HEADER_BYTES = 16384;

export interface ConnTarget {
  port: number;
  protocol: Protocol;
  localAddress: string;
}

export class ClientConn implements FrameSink {
  readonly socket: Socket;
  readonly startedAt = performance.now();
  state: ConnState = ConnState.Connecting;
  readonly #hooks: ConnHooks;
  readonly #protocol: Protocol;
  #pending: Buffer | undefined;
  #nextId = 1;

  constructor(target: ConnTarget, hooks: ConnHooks) {
    this.#hooks = hooks;
    this.#protocol = target.protocol;
    const path = target.protocol === "ws" ? "/ws" : "/socket.io/?EIO=4&transport=websocket";
    this.socket = connect({
      host: "127.0.0.1",
      port: target.port,
      localAddress: target.localAddress,
      noDelay: true,
      onread: { buffer: SHARED_READ_BUFFER, callback: (n: number) => this.#onRead(n) },
    });
    this.socket.once("connect", () => {
      this.state = ConnState.TcpConnected;
      this.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
    });
    this.socket.on("error", () => {
      // "close" follows and reports it
    });
    this.socket.once("close", () => this.#hooks.onClose(this, this.state === ConnState.Open));
  }

  get opened(): boolean {
    return this.state === ConnState.Open;
  }

  /** Subscribes to a channel; the hooks see the ack (or error) later. */
  subscribe(channel: string): void {
    const id = this.#nextId++;
    const text =
      this.#protocol === "ws"
        ? `{"type":"subscribe","channel":${JSON.stringify(channel)},"id":${id}}`
        : `42${id}["subscribe",${JSON.stringify(channel)}]`;
    this.socket.write(encodeClientText(text));
  }

  /** Closes with a TCP reset so no TIME_WAIT is left on the client's source ports. */
  destroy(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  #onRead(length: number): boolean {
    if (this.state >= ConnState.Upgraded) {
      this.#pending = readFrames(this.#pending, SHARED_READ_BUFFER, length, this);
      return true;
    }
    const chunk = SHARED_READ_BUFFER.subarray(0, length);
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    const end = buf.indexOf(HEADER_END);
    if (end < 0) {
      this.#pending = Buffer.from(buf);
      if (buf.length > MAX_HEADER_BYTES) this.destroy();
      return true;
    }
    this.#pending = undefined;
    // "HTTP/1.1 101"
    if (buf[9] !== CH_ONE || buf[10] !== CH_ZERO || buf[11] !== CH_ONE) {
      this.destroy();
      return false;
    }
    this.state = ConnState.Upgraded;
    if (this.#protocol === "ws") this.#open();
    if (end + 4 < buf.length) {
      const rest = buf.subarray(end + 4);
      this.#pending = readFrames(undefined, rest, rest.length, this);
    }
    return true;
  }

  #open(): void {
    this.state = ConnState.Open;
    this.#hooks.onOpen(this);
  }

  onFrame(opcode: number, buf: Buffer, start: number, end: number): void {
    if (opcode === OP_TEXT) {
      if (this.#protocol === "ws") this.#onRawText(buf, start, end);
      else this.#onEngineIo(buf, start, end);
    } else if (opcode === OP_PING) {
      this.socket.write(encodeClientFrame(OP_PONG, Buffer.from(buf.subarray(start, end))));
    } else if (opcode === OP_CLOSE) {
      this.socket.end();
    }
  }

  #onRawText(buf: Buffer, start: number, end: number): void {
    if (this.#hooks.onPayload(buf, start, end, epochMs())) return;
    const text = buf.toString("latin1", start, Math.min(end, start + 40));
    if (text.includes('"ack"')) this.#hooks.onAck(this);
    else if (text.includes('"error"')) this.#hooks.onServerError(this);
  }

  #onEngineIo(buf: Buffer, start: number, end: number): void {
    const eio = buf[start];
    if (eio === CH_FOUR) {
      const sio = buf[start + 1];
      if (sio === CH_TWO) {
        this.#hooks.onPayload(buf, start, end, epochMs());
      } else if (sio === CH_THREE) {
        // `43<id>[{"ok":true}]` or `43<id>[{"error":{…}}]`
        const err = buf.indexOf('"error"', start);
        if (err >= 0 && err < end) this.#hooks.onServerError(this);
        else this.#hooks.onAck(this);
      } else if (sio === CH_ZERO && this.state !== ConnState.Open) {
        this.#open();
      } else if (sio === CH_FOUR) {
        this.#hooks.onServerError(this);
      }
    } else if (eio === CH_TWO) {
      this.socket.write(EIO_PONG);
    } else if (eio === CH_ZERO) {
      this.socket.write(SIO_CONNECT);
    } else if (eio === CH_ONE) {
      this.socket.end();
    }
  }
}
