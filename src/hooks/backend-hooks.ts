import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";
import type { Logger } from "../log.js";
import { channelProblem, encodedData } from "../protocol/client-message.js";
import type { ClientMember } from "../worker/client-member.js";
import type { WorkerCounters } from "../worker/worker-counters.js";
import { type HookAnswer, HookClient } from "./hook-client.js";

/** The backend said no (`{"error":{code,message}}`): the client gets `forbidden` with the backend's own code. */
export class BackendRefusal extends SwitchboardError {
  readonly backendCode: unknown;
  constructor(message: string, backendCode: unknown) {
    super("forbidden", message);
    this.backendCode = backendCode;
  }
}

/** What an error answer carries besides code and message: the backend's code, when the backend refused. */
export function backendFields(err: SwitchboardError): { backendCode: unknown } | undefined {
  return err instanceof BackendRefusal ? { backendCode: err.backendCode } : undefined;
}

/** What the server knows of a new connection, as the connect hook gets it (docs/backend.md). */
export type ConnectRequest = {
  client: string;
  protocol: "ws" | "socket.io";
  transport: "websocket" | "polling";
  remoteAddr: string;
  query: Record<string, string>;
  headers: Record<string, string>;
};

/** An accepted connection's session, as the connect hook gave it. */
export type HookSession = {
  user: string | null;
  channels: string[];
  meta: unknown;
  info: unknown;
  /** unix seconds; 0: never */
  expireAt: number;
};

export type ConnectDecision =
  | { kind: "accept"; session: HookSession }
  | { kind: "refuse"; error: BackendRefusal }
  | { kind: "disconnect"; code: number; reason: string }
  | { kind: "unavailable"; error: SwitchboardError };

/** The close code a connect hook's `disconnect` gets when it names none (or one outside 4000–4999). */
export const DEFAULT_DISCONNECT_CODE = 4010;

/**
 * The backend hooks of one worker (DESIGN §8, docs/backend.md): each turns a client's action into a hook request
 * and the backend's answer into what the gateways do. A hook that is not configured is never called; callers ask
 * `has` first where skipping it changes what they do.
 */
export class BackendHooks {
  readonly #config: Config;
  readonly #client: HookClient;
  /** Header names the connect hook gets (--hook-headers), lowercase. */
  readonly headerNames: readonly string[];

  constructor(config: Config, counters: WorkerCounters, log: Logger) {
    this.#config = config;
    this.headerNames = config.hookHeaders
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h.length > 0);
    this.#client = new HookClient({
      secret: config.hookSecret,
      timeoutMs: config.hookTimeoutMs,
      concurrency: config.hookConcurrency,
      counters,
      log,
    });
  }

  get connectHook(): boolean {
    return this.#config.connectHook !== null;
  }

  get subscribeHook(): boolean {
    return this.#config.subscribeHook !== null;
  }

  get publishHook(): boolean {
    return this.#config.publishHook !== null;
  }

  get refreshHook(): boolean {
    return this.#config.refreshHook !== null;
  }

  /** Asks the connect hook who a new connection is; never rejects. */
  async connect(request: ConnectRequest): Promise<ConnectDecision> {
    const url = this.#config.connectHook as string;
    try {
      return await this.#client.call("connect", url, { event: "connect", ...request }, (a) =>
        this.#readConnect(a),
      );
    } catch (err) {
      return { kind: "unavailable", error: err as SwitchboardError };
    }
  }

  /** Resolves when the backend allows the subscribe; rejects with a BackendRefusal or backend_unavailable. */
  async subscribe(member: ClientMember, channel: string): Promise<void> {
    const payload = { event: "subscribe", ...who(member), channel, meta: member.meta };
    await this.#client.call("subscribe", this.#config.subscribeHook as string, payload, refusalOrNothing);
  }

  /**
   * Resolves with the data to publish as JSON: the client's, or what the backend replaced it with (checked against
   * --max-payload again); rejects with a BackendRefusal, backend_unavailable or too_large.
   */
  async publish(member: ClientMember, channel: string, data: unknown, dataJson: string): Promise<string> {
    const payload = { event: "publish", ...who(member), channel, data, meta: member.meta };
    const answer = await this.#client.call("publish", this.#config.publishHook as string, payload, (a) => {
      refusalOrNothing(a);
      return a;
    });
    if (!("data" in answer)) return dataJson;
    return encodedData(answer.data, this.#config.maxPayloadBytes, "the backend's replacement ");
  }

  /** The backend's answer to a client's rpc call; rejects with a BackendRefusal, backend_unavailable, bad_request. */
  async rpc(member: ClientMember, method: string, data: unknown): Promise<unknown> {
    const url = this.#config.rpcHook;
    if (url === null) throw new SwitchboardError("bad_request", "rpc is not enabled here (no --rpc-hook)");
    encodedData(data, this.#config.maxPayloadBytes, "rpc ");
    const payload = { event: "rpc", ...who(member), method, data, meta: member.meta };
    return this.#client.call("rpc", url, payload, (a) => {
      refusalOrNothing(a);
      return a.data ?? null;
    });
  }

  /**
   * A session's new expiry (unix seconds, later than now), or null when the backend lets it expire (`expired`,
   * an error, an expiry not in the future); rejects with backend_unavailable.
   */
  async refresh(member: ClientMember): Promise<number | null> {
    const payload = { event: "refresh", ...who(member), meta: member.meta };
    return this.#client.call("refresh", this.#config.refreshHook as string, payload, (a) => {
      if (a.expired === true || a.error != null) return null;
      const expireAt = a.expireAt;
      if (typeof expireAt !== "number" || !Number.isFinite(expireAt))
        throw new Error("refresh answer needs expireAt (unix seconds) or expired: true");
      return expireAt * 1000 > Date.now() ? expireAt : null;
    });
  }

  /** Throws (the call counts as failed) when the answer is none of the connect hook's shapes. */
  #readConnect(a: HookAnswer): ConnectDecision {
    if (a.error != null) return { kind: "refuse", error: refusalOf(a.error) };
    if (a.disconnect != null) {
      const d = a.disconnect as { code?: unknown; reason?: unknown };
      const code =
        Number.isInteger(d.code) && (d.code as number) >= 4000 && (d.code as number) <= 4999
          ? (d.code as number)
          : DEFAULT_DISCONNECT_CODE;
      const reason = typeof d.reason === "string" ? d.reason : "disconnected by the backend";
      return { kind: "disconnect", code, reason };
    }
    const user = a.user;
    if (typeof user !== "string" && typeof user !== "number")
      throw new Error('connect answer needs "user" (a string; "" for anonymous), "error" or "disconnect"');
    const channels = a.channels ?? [];
    const maxLength = this.#config.maxChannelLength;
    if (!Array.isArray(channels) || channels.some((c) => channelProblem(c, maxLength) !== null))
      throw new Error('connect answer\'s "channels" must be an array of valid channel names');
    const expireAt = a.expireAt ?? 0;
    if (typeof expireAt !== "number" || !Number.isFinite(expireAt) || expireAt < 0)
      throw new Error('connect answer\'s "expireAt" must be unix seconds');
    const session: HookSession = {
      user: user === "" ? null : String(user),
      channels: channels as string[],
      meta: a.meta,
      info: a.info,
      expireAt,
    };
    return { kind: "accept", session };
  }
}

/** The fields every request about a connection carries. */
function who(member: ClientMember): { client: string; user: string } {
  return { client: member.id, user: member.user ?? "" };
}

/** Throws the backend's refusal when the answer is `{error}`; an answer without one allows. */
function refusalOrNothing(a: HookAnswer): void {
  if (a.error != null) throw refusalOf(a.error);
}

function refusalOf(error: unknown): BackendRefusal {
  const e = (typeof error === "object" ? error : { message: error }) as { code?: unknown; message?: unknown };
  const message = typeof e.message === "string" && e.message !== "" ? e.message : "refused by the backend";
  return new BackendRefusal(message, e.code ?? null);
}
