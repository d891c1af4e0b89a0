import { once } from "node:events";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";

export type Frame = { type: string; [k: string]: unknown };

/** A raw /ws client that records every frame and can wait for one. */
export class RawClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  closeCode: number | null = null;
  #nextId = 1;

  constructor(url: string, options?: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options);
    this.ws.on("message", (data) => this.frames.push(JSON.parse(String(data)) as Frame));
    this.ws.on("close", (code) => {
      this.closeCode = code;
    });
    this.ws.on("error", () => {});
  }

  static async open(url: string, options?: WebSocket.ClientOptions): Promise<RawClient> {
    const c = new RawClient(url, options);
    await once(c.ws, "open");
    return c;
  }

  send(frame: Record<string, unknown>): number {
    const id = this.#nextId++;
    this.ws.send(JSON.stringify({ id, ...frame }));
    return id;
  }

  /** Sends a request and resolves with the reply carrying its id (ack, error or pong). */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<Frame> {
    const id = this.send(frame);
    return this.waitFor((f) => f.id === id, timeoutMs);
  }

  async subscribe(channel: string, since?: number): Promise<Frame> {
    return this.request(
      since === undefined ? { type: "subscribe", channel } : { type: "subscribe", channel, since },
    );
  }

  messages(channel?: string): Frame[] {
    return this.frames.filter(
      (f) => f.type === "message" && (channel === undefined || f.channel === channel),
    );
  }

  async waitFor(test: (f: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.frames.find(test);
      if (f) return f;
      if (Date.now() > deadline)
        throw new Error(
          `frame not received in ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`,
        );
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async waitForMessages(channel: string, count: number, timeoutMs = 5000): Promise<Frame[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages(channel).length < count) {
      if (Date.now() > deadline)
        throw new Error(`got ${this.messages(channel).length} of ${count} messages on ${channel}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.messages(channel);
  }

  async closed(timeoutMs = 10_000): Promise<number> {
    if (this.closeCode !== null) return this.closeCode;
    const timer = setTimeout(() => this.ws.terminate(), timeoutMs);
    const [code] = (await once(this.ws, "close")) as [number];
    clearTimeout(timer);
    return code;
  }

  close(): void {
    this.ws.terminate();
  }
}

/**
 * Losses a raw client was not told of: places in its frames where the numbered stream `{n}` on `channel` skips
 * numbers with no `history_gap` frame for the channel since the last message. Zero means nothing was lost silently.
 */
export function silentLosses(frames: Frame[], channel: string): number[] {
  const silent: number[] = [];
  let last: number | null = null;
  let told = false;
  for (const f of frames) {
    if (f.channel !== channel) continue;
    if (f.type === "error" && f.code === "history_gap") told = true;
    if (f.type !== "message") continue;
    const n = (f.data as { n?: number }).n as number;
    if (last !== null && n !== last + 1 && !told) silent.push(n);
    last = n;
    told = false;
  }
  return silent;
}

export type SioMessage = { channel: string; data: unknown; offset: number };

/** A socket.io-client that records "message" events. */
export class SioClient {
  readonly socket: Socket;
  readonly received: SioMessage[] = [];
  /** Unsolicited `gap` events: messages of a channel may be missing. */
  readonly gaps: ({ channel: string } & Record<string, unknown>)[] = [];

  constructor(
    url: string,
    transports: ("polling" | "websocket")[] = ["websocket"],
    opts: Record<string, unknown> = {},
  ) {
    this.socket = io(url, { transports, reconnection: false, forceNew: true, ...opts });
    this.socket.on("message", (channel: string, data: unknown, meta: { offset: number }) => {
      this.received.push({ channel, data, offset: meta.offset });
    });
    this.socket.on("gap", (channel: string, info: Record<string, unknown>) =>
      this.gaps.push({ channel, ...info }),
    );
  }

  static async open(
    url: string,
    transports?: ("polling" | "websocket")[],
    opts?: Record<string, unknown>,
  ): Promise<SioClient> {
    const c = new SioClient(url, transports, opts);
    await new Promise<void>((resolve, reject) => {
      c.socket.once("connect", () => resolve());
      c.socket.once("connect_error", reject);
    });
    return c;
  }

  subscribe(channel: string): Promise<{ ok?: boolean; error?: { code: string } }> {
    return this.socket.timeout(5000).emitWithAck("subscribe", channel);
  }

  async waitForMessages(channel: string, count: number, timeoutMs = 5000): Promise<SioMessage[]> {
    const deadline = Date.now() + timeoutMs;
    const mine = () => this.received.filter((m) => m.channel === channel);
    while (mine().length < count) {
      if (Date.now() > deadline) throw new Error(`socket.io got ${mine().length} of ${count} on ${channel}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return mine();
  }

  close(): void {
    this.socket.disconnect();
  }
}
