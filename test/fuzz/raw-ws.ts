/**
 * A WebSocket client over a bare TCP socket that sends whatever frames the fuzzer builds (bad opcodes, unmasked,
 * fragments, oversized, invalid UTF-8) and reads the server's frames and close code.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

export type ServerFrame = { opcode: number; payload: Buffer };

export type FrameSpec = { opcode: number; payload: Buffer; fin?: boolean; masked?: boolean; rsv?: number };

export class RawWs {
  readonly frames: ServerFrame[] = [];
  /** The close code the server sent (null: the TCP connection ended without a close frame). */
  closeCode: number | null = null;
  ended = false;
  readonly #socket: Socket;
  #buffer = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (d: Buffer) => this.#read(d));
    socket.on("close", () => {
      this.ended = true;
    });
    socket.on("error", () => {});
  }

  /** Opens `path` with a WebSocket upgrade; rejects when the server does not answer 101. */
  static open(port: number, path: string, timeoutMs = 5000): Promise<RawWs> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error("upgrade timed out"));
      }, timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        head = Buffer.concat([head, d]);
        const end = head.indexOf("\r\n\r\n");
        if (end === -1) return;
        clearTimeout(timer);
        socket.off("data", onData);
        if (!head.subarray(0, 12).toString().includes("101")) {
          socket.destroy();
          return reject(new Error(`upgrade answered ${head.subarray(0, end).toString().split("\r\n")[0]}`));
        }
        const ws = new RawWs(socket);
        if (head.length > end + 4) ws.#read(head.subarray(end + 4));
        resolve(ws);
      };
      socket.on("data", onData);
      socket.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  send({ opcode, payload, fin = true, masked = true, rsv = 0 }: FrameSpec): void {
    if (this.ended) return;
    const len = payload.length;
    const header: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    const maskBit = masked ? 0x80 : 0;
    if (len < 126) header.push(maskBit | len);
    else if (len < 65536) header.push(maskBit | 126, len >> 8, len & 0xff);
    else {
      header.push(maskBit | 127, 0, 0, 0, 0);
      header.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
    }
    let body = payload;
    if (masked) {
      const key = randomBytes(4);
      body = Buffer.alloc(len);
      for (let i = 0; i < len; i++) body[i] = (payload[i] as number) ^ (key[i & 3] as number);
      this.#socket.write(Buffer.concat([Buffer.from(header), key, body]));
    } else this.#socket.write(Buffer.concat([Buffer.from(header), body]));
  }

  text(s: string | Buffer): void {
    this.send({ opcode: 1, payload: typeof s === "string" ? Buffer.from(s) : s });
  }

  /** Text frames received, as strings. */
  texts(): string[] {
    return this.frames.filter((f) => f.opcode === 1).map((f) => f.payload.toString());
  }

  close(): void {
    this.#socket.destroy();
  }

  #read(d: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, d]);
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) return;
      let len = (b[1] as number) & 0x7f;
      let at = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        at = 10;
      }
      if (b.length < at + len) return;
      const frame = { opcode: (b[0] as number) & 0x0f, payload: b.subarray(at, at + len) };
      this.#buffer = b.subarray(at + len);
      this.frames.push(frame);
      if (frame.opcode === 8) this.closeCode = len >= 2 ? frame.payload.readUInt16BE(0) : 1005;
      // Answer the server's heartbeat, as a live client would.
      if (frame.opcode === 9) this.send({ opcode: 10, payload: frame.payload });
    }
  }
}
