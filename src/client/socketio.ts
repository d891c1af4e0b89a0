import { backoffFor } from "./backoff.js";
import { Emitter } from "./emitter.js";
import { isRetryable, SwitchboardClientError } from "./errors.js";
import {
  type PendingPublish,
  type PublishOptions,
  PublishQueue,
  type PublishResult,
} from "./publish-queue.js";
import { randomKey } from "./random-key.js";
import { type PendingRpc, RpcCalls } from "./rpc-calls.js";
import {
  type ChannelTracker,
  ChannelTrackers,
  type Gap,
  type GapReport,
  type PresenceInfo,
  type Subscription,
  type SubscriptionHandlers,
} from "./subscription.js";

/**
 * The part of a socket.io-client Socket the wrapper uses (so that src/client does not depend on socket.io-client).
 * Listener parameters are checked bivariantly: socket.io-client types them per event.
 */
type Listener = { bivarianceHack(...args: unknown[]): void }["bivarianceHack"];

export interface SocketIOLike {
  readonly connected: boolean;
  on(event: string, listener: Listener): unknown;
  off(event: string, listener: Listener): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  /** socket.io-client's: asked again after a backend_unavailable refusal (it does not retry those itself). */
  connect?(): unknown;
}

export type SocketIOSubscriptionsOptions = {
  /** Backoff bounds for requests the server refused for a passing reason (unavailable, rate_limited, internal). */
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  publishTimeoutMs?: number;
  rpcTimeoutMs?: number;
  random?: () => number;
};

export type SocketIOSubscriptionsEvents = {
  error: (err: Error) => void;
  gap: (gap: Gap) => void;
};

/** An ack as the server sends it: `{ok:true, …}` or `{error:{code, message, …}}`. */
type Reply = {
  ok?: boolean;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
  duplicate?: boolean;
  error?: GapReport & { code: string; message: string; backendCode?: unknown };
  data?: unknown;
};

/**
 * Resumable subscriptions and exactly-once publishes for apps that keep socket.io-client. socket.io-client
 * reconnects by itself; on each `connect` this resubscribes every channel from its position, so the server
 * replays what was missed. Requests go out only while connected (socket.io-client would otherwise buffer them
 * and send them on reconnect, next to the wrapper's own resend).
 */
export class SocketIOSubscriptions {
  readonly #socket: SocketIOLike;
  readonly #channels: ChannelTrackers;
  /** The connection each subscription was last sent on; a subscription already sent on this one is not resent. */
  readonly #sentOn = new WeakMap<ChannelTracker, number>();
  readonly #publishes: PublishQueue;
  readonly #rpcs: RpcCalls;
  /** Connection attempts the backend refused as unavailable in a row, and the timer of the next one. */
  #refusals = 0;
  #connectTimer: ReturnType<typeof setTimeout> | null = null;
  readonly #events = new Emitter<SocketIOSubscriptionsEvents>();
  readonly #o: Required<SocketIOSubscriptionsOptions>;
  /** The retry delay for an attempt (requests the server refused for a passing reason). */
  readonly #backoff: (attempt: number) => number;
  /** Counts disconnects: replies to a request sent on an earlier connection are stale. */
  #connection = 0;
  #closed = false;

  readonly #onConnect = () => {
    this.#refusals = 0;
    for (const tracker of this.#channels.values()) {
      if (this.#sentOn.get(tracker) !== this.#connection) this.#sendSubscribe(tracker);
    }
    this.#publishes.flush();
    this.#rpcs.flush();
  };

  readonly #onDisconnect = () => {
    this.#connection += 1;
    for (const tracker of this.#channels.values()) tracker.cancelRetry();
    this.#publishes.connectionLost();
    this.#rpcs.connectionLost();
  };

  /**
   * socket.io-client retries a lost link by itself, not a connection the server refused: one refused because the
   * backend was unavailable is asked again after a backoff; one the backend disconnected for good is reported.
   */
  readonly #onConnectError = (err: unknown) => {
    const data = (err as { data?: { code?: unknown; reason?: unknown } } | null)?.data;
    if (data?.code === "disconnected") {
      this.#events.emit(
        "error",
        new SwitchboardClientError("disconnected", String(data.reason ?? "disconnected")),
      );
      return;
    }
    if (data?.code !== "backend_unavailable" || !this.#socket.connect || this.#connectTimer) return;
    this.#connectTimer = setTimeout(
      () => {
        this.#connectTimer = null;
        if (!this.#closed && !this.#socket.connected) this.#socket.connect?.();
      },
      this.#backoff(this.#refusals++),
    );
  };

  readonly #onMessage = (channel: unknown, data: unknown, meta: unknown) => {
    if (typeof channel !== "string") return;
    this.#channels.get(channel)?.message(data, (meta as { offset?: number } | undefined)?.offset);
  };

  readonly #onGap = (channel: unknown, report: unknown) => {
    if (typeof channel !== "string") return;
    const tracker = this.#channels.get(channel);
    if (tracker) this.#gap(tracker, (report ?? {}) as GapReport, false);
  };

  readonly #onJoin = (channel: unknown, info: unknown) => this.#presence("join", channel, info);
  readonly #onLeave = (channel: unknown, info: unknown) => this.#presence("leave", channel, info);
  readonly #onUnsubscribed = (notice: unknown) => {
    const { channel, reason } = (notice ?? {}) as { channel?: unknown; reason?: unknown };
    if (typeof channel === "string") this.#channels.get(channel)?.ended(String(reason ?? "server"));
  };

  #presence(kind: "join" | "leave", channel: unknown, info: unknown): void {
    if (typeof channel === "string") this.#channels.get(channel)?.presence(kind, info as PresenceInfo);
  }

  constructor(socket: SocketIOLike, options: SocketIOSubscriptionsOptions = {}) {
    this.#socket = socket;
    this.#channels = new ChannelTrackers(this.#events, (t, tellServer) => this.#left(t, tellServer));
    this.#o = {
      minRetryDelayMs: options.minRetryDelayMs ?? 500,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 20_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
      rpcTimeoutMs: options.rpcTimeoutMs ?? 30_000,
      random: options.random ?? Math.random,
    };
    this.#backoff = backoffFor(this.#o.minRetryDelayMs, this.#o.maxRetryDelayMs, this.#o.random);
    this.#publishes = new PublishQueue((p) => this.#sendPublish(p), this.#backoff, this.#o.publishTimeoutMs);
    this.#rpcs = new RpcCalls((call) => this.#sendRpc(call), this.#o.rpcTimeoutMs);
    socket.on("connect", this.#onConnect);
    socket.on("connect_error", this.#onConnectError);
    socket.on("disconnect", this.#onDisconnect);
    socket.on("message", this.#onMessage);
    socket.on("gap", this.#onGap);
    socket.on("join", this.#onJoin);
    socket.on("leave", this.#onLeave);
    socket.on("unsubscribed", this.#onUnsubscribed);
  }

  on<K extends keyof SocketIOSubscriptionsEvents>(
    event: K,
    listener: SocketIOSubscriptionsEvents[K],
  ): () => void {
    return this.#events.on(event, listener);
  }

  /** Subscribes now when the socket is connected, and again (resuming) on every reconnect. */
  subscribe(
    channel: string,
    options: SubscriptionHandlers & { since?: number; epoch?: string },
  ): Subscription {
    if (this.#closed) throw new Error("this SocketIOSubscriptions was closed");
    const tracker = this.#channels.add(channel, options);
    if (this.#socket.connected) this.#sendSubscribe(tracker);
    return tracker;
  }

  /** Like Switchboard.publish: the same idempotency key on every send, until acknowledged or timed out. */
  publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    if (this.#closed) return Promise.reject(new SwitchboardClientError("closed", "close() was called"));
    return this.#publishes.add(channel, data, options.idempotencyKey ?? randomKey());
  }

  /** Like Switchboard.rpc: the backend's answer to `method`; never sent twice. */
  rpc(method: string, data: unknown = null): Promise<unknown> {
    if (this.#closed) return Promise.reject(new SwitchboardClientError("closed", "close() was called"));
    return this.#rpcs.add(method, data);
  }

  /** Stops listening to the socket (which stays the app's); rejects pending publishes and rpc calls (`closed`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    for (const tracker of [...this.#channels.values()]) tracker.unsubscribe();
    this.#socket.off("connect", this.#onConnect);
    this.#socket.off("disconnect", this.#onDisconnect);
    this.#socket.off("message", this.#onMessage);
    this.#socket.off("gap", this.#onGap);
    this.#socket.off("join", this.#onJoin);
    this.#socket.off("leave", this.#onLeave);
    this.#socket.off("unsubscribed", this.#onUnsubscribed);
    this.#socket.off("connect_error", this.#onConnectError);
    const err = new SwitchboardClientError("closed", "close() was called");
    this.#publishes.rejectAll(err);
    this.#rpcs.rejectAll(err);
  }

  #sendSubscribe(tracker: ChannelTracker): void {
    const connection = this.#connection;
    this.#sentOn.set(tracker, connection);
    const resume = tracker.resume();
    const payload = resume.since === undefined ? tracker.channel : { channel: tracker.channel, ...resume };
    this.#socket.emit("subscribe", payload, (reply: Reply | undefined) => {
      if (connection !== this.#connection || !tracker.active) return;
      const error = reply?.error;
      if (!error) {
        tracker.subscribed(reply ?? {});
      } else if (error.code === "history_gap") {
        this.#gap(tracker, error, true);
      } else if (isRetryable(error.code)) {
        tracker.retryLater(this.#backoff, () => {
          if (this.#socket.connected && connection === this.#connection) this.#sendSubscribe(tracker);
        });
      } else {
        const err = new SwitchboardClientError(error.code, `subscribe ${tracker.channel}: ${error.message}`);
        tracker.failed(err);
        this.#events.emit("error", err);
      }
    });
  }

  #sendPublish(p: PendingPublish): boolean {
    if (!this.#socket.connected) return false;
    const connection = this.#connection;
    this.#socket.emit(
      "publish",
      p.channel,
      p.data,
      { idempotencyKey: p.idempotencyKey },
      (reply: Reply | undefined) => {
        if (connection !== this.#connection) return; // sent again on the new connection
        if (reply?.error) this.#publishes.failed(p, reply.error.code, reply.error.message);
        else this.#publishes.acked(p, reply ?? {});
      },
    );
    return true;
  }

  #sendRpc(call: PendingRpc): boolean {
    if (!this.#socket.connected) return false;
    const connection = this.#connection;
    this.#socket.emit("rpc", call.method, call.data, (reply: Reply | undefined) => {
      if (connection !== this.#connection) return; // already rejected as connection_lost
      const error = reply?.error;
      if (error)
        this.#rpcs.failed(call, new SwitchboardClientError(error.code, error.message, error.backendCode));
      else this.#rpcs.answered(call, reply?.data ?? null);
    });
    return true;
  }

  #gap(tracker: ChannelTracker, report: GapReport, solicited: boolean): void {
    const gap = tracker.gap(report, solicited);
    if (gap) this.#events.emit("gap", gap);
  }

  #left(tracker: ChannelTracker, tellServer: boolean): void {
    if (tellServer && this.#socket.connected) this.#socket.emit("unsubscribe", tracker.channel, () => {});
  }
}
