/**
 * The fleet's clients, run by the agent inside the client namespace. Each one knows both balancers, starts on one
 * of them and, when a connection attempt fails (its balancer is gone), tries the other one next: what a client does
 * with two A records. Raw clients are the SDK's Switchboard (reconnect, resume with since + epoch, no duplicates),
 * Socket.IO clients use the SDK's SocketIOSubscriptions on socket.io-client, as test/helpers/load.ts does; both
 * count what they received the way load.ts does, so its deliveryProblems() applies.
 */

import type { IncomingMessage } from "node:http";
import http from "node:http";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { SocketIOSubscriptions, Switchboard } from "../../src/client/index.js";
import { type ClientStats, countingHandlers, emptyStats } from "../helpers/load.js";

export interface FleetStats extends ClientStats {
  /** Balancer index of every successful connection, in order. */
  balancers: number[];
  /** X-Switchboard-Server of every successful raw upgrade (which host and colour served it). */
  servers: string[];
}

export interface ClientOptions {
  /** SDK heartbeat (raw clients): ping after this much silence, give up this long after it. */
  heartbeat?: { intervalMs: number; timeoutMs: number };
  /** Socket.IO: drop the link when no packet arrived for this long (the server pings every PING_INTERVAL_MS). */
  watchdogMs?: number;
}

function newStats(kind: ClientStats["kind"]): FleetStats {
  return { ...emptyStats(kind), balancers: [], servers: [] };
}

abstract class FleetClient {
  readonly stats: FleetStats;
  protected stopped = false;
  protected readonly handlers: ReturnType<typeof countingHandlers>;
  /** The balancer the next attempt goes to. */
  protected current: number;

  constructor(
    kind: ClientStats["kind"],
    protected readonly balancers: string[],
    first: number,
  ) {
    this.stats = newStats(kind);
    this.handlers = countingHandlers(this.stats);
    this.current = first % balancers.length;
  }

  /** After a failed attempt: the other balancer next time. */
  protected failover(): void {
    this.current = (this.current + 1) % this.balancers.length;
  }

  protected error(text: string): void {
    if (this.stats.errors.length < 5) this.stats.errors.push(text);
  }

  abstract close(): void;
}

export class FleetRawClient extends FleetClient {
  readonly #sdk: Switchboard;

  constructor(balancers: string[], first: number, channel: string, o: ClientOptions = {}) {
    super("raw", balancers, first);
    const client = this;
    class WatchedWebSocket extends WebSocket {
      constructor(target: string) {
        super(target);
        const balancer = client.current;
        let opened = false;
        let told = false;
        this.on("upgrade", (res: IncomingMessage) => {
          client.stats.servers.push(String(res.headers["x-switchboard-server"] ?? "?"));
        });
        this.on("open", () => {
          opened = true;
          client.stats.connects += 1;
          client.stats.balancers.push(balancer);
        });
        this.on("unexpected-response", (_req, res) =>
          client.error(`upgrade answered HTTP ${res.statusCode}`),
        );
        this.on("error", (err) => client.error(err.message));
        this.on("message", (raw) => {
          if (String(raw).startsWith('{"type":"reconnect"')) told = true;
        });
        this.on("close", () => {
          client.stats.subscribed = false;
          if (client.stopped) return;
          if (!opened) {
            client.stats.failedAttempts += 1;
            client.failover();
          } else if (!told) client.stats.unexpectedCloses += 1;
        });
      }
    }
    this.#sdk = new Switchboard(() => `${this.balancers[this.current]?.replace("http", "ws")}/ws`, {
      WebSocket: WatchedWebSocket,
      minReconnectDelayMs: 250,
      ...(o.heartbeat
        ? { heartbeatIntervalMs: o.heartbeat.intervalMs, heartbeatTimeoutMs: o.heartbeat.timeoutMs }
        : {}),
    });
    this.#sdk.subscribe(channel, this.handlers);
    this.#sdk.connect();
  }

  close(): void {
    this.stopped = true;
    this.#sdk.disconnect();
  }
}

/** Socket.IO with the browser defaults (long-polling first, then the upgrade) and a cookie jar. */
export class FleetSioClient extends FleetClient {
  readonly #socket: Socket;
  readonly #subscriptions: SocketIOSubscriptions;
  #lastPacket = Date.now();
  #watchdog: NodeJS.Timeout | undefined;

  constructor(balancers: string[], first: number, channel: string, o: ClientOptions = {}) {
    super("socket.io", balancers, first);
    this.#socket = io(this.balancers[this.current] as string, {
      withCredentials: true,
      forceNew: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 2000,
      timeout: 5000,
    });
    const manager = this.#socket.io;
    this.#subscriptions = new SocketIOSubscriptions(this.#socket);
    this.#subscriptions.subscribe(channel, this.handlers);
    this.#socket.on("connect", () => {
      this.stats.connects += 1;
      this.stats.balancers.push(this.current);
      this.#lastPacket = Date.now();
      manager.engine.on("packet", () => {
        this.#lastPacket = Date.now();
      });
    });
    this.#socket.on("connect_error", (err) => {
      this.stats.failedAttempts += 1;
      this.error(`connect_error: ${err.message}`);
      this.failover();
      // The next attempt opens a new Engine.IO connection to the manager's uri.
      (manager as unknown as { uri: string }).uri = this.balancers[this.current] as string;
    });
    this.#socket.on("disconnect", (reason) => {
      this.stats.subscribed = false;
      if (reason !== "transport close" && reason !== "io client disconnect") {
        this.stats.unexpectedCloses += 1;
        this.error(`disconnect: ${reason}`);
      }
      if (reason === "io server disconnect" && !this.stopped) this.#socket.connect();
    });
    if (o.watchdogMs !== undefined) {
      const limit = o.watchdogMs;
      this.#watchdog = setInterval(
        () => {
          if (this.#socket.connected && Date.now() - this.#lastPacket > limit) {
            this.error("watchdog: no packet, closing the engine");
            this.#lastPacket = Date.now();
            manager.engine.close();
          }
        },
        Math.max(100, limit / 4),
      );
    }
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.#watchdog);
    this.#subscriptions.close();
    this.#socket.disconnect();
  }
}

interface Answer {
  status: number;
  body: string;
  server: string;
  setCookie: string[];
}

function httpCall(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: 30_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: text,
          server: String(res.headers["x-switchboard-server"] ?? "?"),
          setCookie: res.headers["set-cookie"] ?? [],
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: timeout`)));
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * One Socket.IO session by hand on Engine.IO's long-polling transport, every request through the next balancer
 * in turn, carrying the SERVERID cookie the first answer set: every request of the session must reach the one
 * server that holds it, whichever balancer it went through. Subscribes to `channel`; `poll()` collects messages.
 */
export class PollingSession {
  readonly servedBy: string[] = [];
  readonly via: number[] = [];
  readonly messages: number[] = [];
  server = "";
  #sid = "";
  #cookie = "";
  #turn: number;
  #ackWaiters = new Map<number, (data: unknown) => void>();

  constructor(
    private readonly balancers: string[],
    first: number,
  ) {
    this.#turn = first;
  }

  #next(): string {
    const i = this.#turn++ % this.balancers.length;
    this.via.push(i);
    return this.balancers[i] as string;
  }

  async #call(method: "GET" | "POST", body?: string): Promise<Answer> {
    const sid = this.#sid ? `&sid=${this.#sid}` : "";
    const url = `${this.#next()}/socket.io/?EIO=4&transport=polling${sid}`;
    const headers: Record<string, string> = this.#cookie ? { cookie: this.#cookie } : {};
    if (body !== undefined) headers["content-type"] = "text/plain;charset=UTF-8";
    const res = await httpCall(url, method, headers, body);
    this.servedBy.push(res.server);
    if (res.status !== 200)
      throw new Error(`${method} ${url} answered ${res.status}: ${res.body.slice(0, 200)}`);
    return res;
  }

  async open(): Promise<void> {
    const res = await this.#call("GET");
    const open = JSON.parse(res.body.slice(1)) as { sid: string };
    this.#sid = open.sid;
    const cookie = res.setCookie.map((c) => c.split(";")[0] ?? "").find((c) => c.startsWith("SERVERID="));
    if (!cookie) throw new Error(`no SERVERID cookie in the handshake answer (${res.setCookie.join(" | ")})`);
    this.#cookie = cookie;
    this.server = cookie.slice("SERVERID=".length);
    await this.#call("POST", "40");
    await this.poll(); // the connect ack
  }

  async subscribe(channel: string): Promise<unknown> {
    const acked = new Promise<unknown>((resolve) => this.#ackWaiters.set(1, resolve));
    await this.#call("POST", `421${JSON.stringify(["subscribe", channel])}`);
    while (this.#ackWaiters.has(1)) await this.poll();
    return acked;
  }

  /** One long-poll: handles what it brings (messages, acks, pings). */
  async poll(): Promise<void> {
    const res = await this.#call("GET");
    for (const packet of res.body.split("\x1e")) {
      if (packet === "2") await this.#call("POST", "3");
      else if (packet.startsWith("42")) {
        const [event, , data] = JSON.parse(packet.slice(2)) as [string, string, { n?: number }];
        if (event === "message" && typeof data?.n === "number") this.messages.push(data.n);
      } else if (packet.startsWith("43")) {
        const m = /^43(\d+)(.*)$/.exec(packet);
        const id = Number(m?.[1]);
        const waiter = this.#ackWaiters.get(id);
        this.#ackWaiters.delete(id);
        waiter?.((JSON.parse(m?.[2] ?? "[]") as unknown[])[0]);
      }
    }
  }

  async close(): Promise<void> {
    await this.#call("POST", "1").catch(() => {});
  }
}
