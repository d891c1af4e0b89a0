/**
 * A minimal keep-alive HTTP/1.1 client connection over `net` for POSTing to the publish API: one request in
 * flight, Content-Length or chunked responses, reconnects when the server answers `Connection: close`
 * (as @socket.io/sticky's workers always do).
 */
import { connect, type Socket } from "node:net";

export interface HttpResult {
  status: number;
}

const HEADER_END = Buffer.from("\r\n\r\n");
const CHUNKED_END = Buffer.from("\r\n0\r\n\r\n");
const REQUEST_TIMEOUT_MS = 15_000;

interface Waiter {
  resolve: (r: HttpResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class HttpConn {
  readonly #port: number;
  readonly #localAddress: string | undefined;
  #socket: Socket | undefined;
  #buf: Buffer | undefined;
  #waiter: Waiter | undefined;
  /** Connections opened so far (1 for a well-behaved keep-alive server). */
  connects = 0;

  constructor(port: number, localAddress?: string) {
    this.#port = port;
    this.#localAddress = localAddress;
  }

  get busy(): boolean {
    return this.#waiter !== undefined;
  }

  /** POSTs a JSON body; rejects on network errors or after 15 s. */
  post(path: string, body: string): Promise<HttpResult> {
    if (this.#waiter) return Promise.reject(new Error("request already in flight"));
    const socket = this.#socket && !this.#socket.destroyed ? this.#socket : this.#open();
    const head =
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${this.#port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    socket.write(head + body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(new Error("request timed out")), REQUEST_TIMEOUT_MS);
      this.#waiter = { resolve, reject, timer };
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #open(): Socket {
    this.connects++;
    this.#buf = undefined;
    const socket = connect({ host: "127.0.0.1", port: this.#port, localAddress: this.#localAddress });
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    // Only the current socket's failure concerns the request in flight (not one retired after `Connection: close`).
    socket.on("error", (err) => {
      if (this.#socket === socket) this.#fail(err);
    });
    socket.on("close", () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#fail(new Error("connection closed"));
    });
    this.#socket = socket;
    return socket;
  }

  #fail(err: Error): void {
    const w = this.#waiter;
    if (!w) return;
    this.#waiter = undefined;
    clearTimeout(w.timer);
    this.#socket?.destroy();
    w.reject(err);
  }

  #onData(chunk: Buffer): void {
    const buf = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    const headerEnd = buf.indexOf(HEADER_END);
    if (headerEnd < 0) {
      this.#buf = buf;
      return;
    }
    const head = buf.toString("latin1", 0, headerEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    // The body is skipped, not decoded: callers only need the status.
    const bodyStart = headerEnd + 4;
    let bodyEnd: number;
    const lenMatch = /\r\ncontent-length:\s*(\d+)/.exec(head);
    if (lenMatch) {
      bodyEnd = bodyStart + Number(lenMatch[1]);
      if (buf.length < bodyEnd) {
        this.#buf = buf;
        return;
      }
    } else if (head.includes("transfer-encoding: chunked")) {
      const end = buf.indexOf(CHUNKED_END, bodyStart - 2);
      if (end < 0) {
        this.#buf = buf;
        return;
      }
      bodyEnd = end + CHUNKED_END.length;
    } else {
      bodyEnd = buf.length;
    }
    this.#buf = bodyEnd < buf.length ? buf.subarray(bodyEnd) : undefined;
    const w = this.#waiter;
    this.#waiter = undefined;
    if (head.includes("\r\nconnection: close")) {
      const s = this.#socket;
      this.#socket = undefined;
      s?.destroy();
    }
    if (w) {
      clearTimeout(w.timer);
      w.resolve({ status });
    }
  }
}
