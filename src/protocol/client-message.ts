import { type ErrorCode, SwitchboardError } from "../errors.js";

/** Frames a raw WebSocket client sends (docs/protocol.md). `id` is echoed on the reply when present. */
export type ClientMessage =
  | { type: "subscribe"; channel: string; id?: RequestId; since?: number; epoch?: string }
  | { type: "unsubscribe"; channel: string; id?: RequestId }
  | { type: "publish"; channel: string; data: unknown; id?: RequestId; idempotencyKey?: string }
  | { type: "refresh"; token: string; id?: RequestId }
  | { type: "rpc"; method: string; data: unknown; id?: RequestId }
  | { type: "ping"; id?: RequestId };

/** Longest token a refresh may carry. */
export const MAX_TOKEN_LENGTH = 8192;
/** Longest epoch a resume may carry; epochs the server makes are far shorter. */
export const MAX_EPOCH_LENGTH = 64;
/** Longest rpc method name (docs/protocol.md). */
export const MAX_METHOD_LENGTH = 64;
/** Longest idempotency key (docs/protocol.md). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 128;

export type RequestId = string | number;

export type ParseFailure = { error: ErrorCode; message: string; id?: RequestId };

const CHANNEL_CHARS = /^[A-Za-z0-9_\-:.@/=]+$/;

/** Checks a channel name; returns a reason when it is not acceptable. */
export function channelProblem(channel: unknown, maxLength: number): string | null {
  if (typeof channel !== "string" || channel.length === 0) return "channel must be a non-empty string";
  if (channel.length > maxLength) return `channel is longer than ${maxLength} characters`;
  if (!CHANNEL_CHARS.test(channel)) return "channel may only contain A-Z a-z 0-9 _ - : . @ / =";
  return null;
}

/** Checks a subscribe's `since` (absent is fine); returns a reason when it is not acceptable. */
export function sinceProblem(since: unknown): string | null {
  if (since === undefined || (typeof since === "number" && Number.isInteger(since) && since >= 0))
    return null;
  return "since must be a non-negative integer offset";
}

/** Checks a resume's `epoch` (absent is fine; it needs `since`); returns a reason when it is not acceptable. */
export function epochProblem(epoch: unknown, since: unknown): string | null {
  if (epoch === undefined) return null;
  if (typeof epoch !== "string" || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH)
    return `epoch must be a string of 1-${MAX_EPOCH_LENGTH} characters`;
  if (since === undefined) return "epoch needs since (the offset to resume after)";
  return null;
}

/** Checks a publish's `idempotencyKey` (absent is fine); returns a reason when it is not acceptable. */
export function idempotencyKeyProblem(key: unknown): string | null {
  if (key === undefined) return null;
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH)
    return `idempotencyKey must be a string of 1-${MAX_IDEMPOTENCY_KEY_LENGTH} characters`;
  return null;
}

/** A publish or presence channel, checked; throws invalid_channel. `where` prefixes the reason. */
export function checkedChannel(channel: unknown, maxLength: number, where = ""): string {
  const problem = channelProblem(channel, maxLength);
  if (problem) throw new SwitchboardError("invalid_channel", `${where}${problem}`);
  return channel as string;
}

/** A publish's data as JSON, within the payload limit; throws too_large. `where` prefixes the reason. */
export function encodedData(data: unknown, maxBytes: number, where = ""): string {
  let dataJson: string;
  try {
    dataJson = JSON.stringify(data) ?? "null";
  } catch {
    // A structure nested deeper than the JSON encoder's stack allows (it parsed, but cannot be sent on).
    throw new SwitchboardError("bad_request", `${where}data is nested too deeply`);
  }
  if (Buffer.byteLength(dataJson) > maxBytes) {
    throw new SwitchboardError("too_large", `${where}data exceeds ${maxBytes} bytes`);
  }
  return dataJson;
}

function idOf(value: unknown): RequestId | undefined {
  return typeof value === "string" || (typeof value === "number" && Number.isFinite(value))
    ? value
    : undefined;
}

/** Parses one text frame into a ClientMessage, or the error code and message to send back. Pure. */
export function parseClientMessage(text: string, maxChannelLength: number): ClientMessage | ParseFailure {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { error: "bad_request", message: "frame is not valid JSON" };
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) {
    return { error: "bad_request", message: "frame must be a JSON object" };
  }
  return toClientMessage(raw as Record<string, unknown>, maxChannelLength);
}

/**
 * Checks one frame, already decoded, into a ClientMessage: the raw protocol's JSON objects and the frames the
 * Socket.IO gateway builds from its events go through the same rules. Pure.
 */
export function toClientMessage(
  frame: Record<string, unknown>,
  maxChannelLength: number,
): ClientMessage | ParseFailure {
  const id = idOf(frame.id);
  if (frame.id !== undefined && id === undefined) {
    return { error: "bad_request", message: "id must be a string or a number" };
  }
  const withId = <T extends object>(m: T): T => (id === undefined ? m : { ...m, id });
  const fail = (error: ErrorCode, message: string) => withId({ error, message });
  switch (frame.type) {
    case "ping":
      return withId({ type: "ping" as const });
    case "refresh": {
      const token = frame.token;
      if (typeof token !== "string" || token.length === 0 || token.length > MAX_TOKEN_LENGTH)
        return fail("bad_request", `refresh needs a token (a string of 1-${MAX_TOKEN_LENGTH} characters)`);
      return withId({ type: "refresh" as const, token });
    }
    case "rpc": {
      const method = frame.method;
      if (typeof method !== "string" || method.length === 0 || method.length > MAX_METHOD_LENGTH)
        return fail("bad_request", `rpc needs a method (a string of 1-${MAX_METHOD_LENGTH} characters)`);
      return withId({ type: "rpc" as const, method, data: frame.data ?? null });
    }
    case "subscribe":
    case "unsubscribe":
    case "publish": {
      const problem = channelProblem(frame.channel, maxChannelLength);
      if (problem) return fail("invalid_channel", problem);
      const channel = frame.channel as string;
      if (frame.type === "unsubscribe") return withId({ type: "unsubscribe" as const, channel });
      if (frame.type === "publish") {
        if (!("data" in frame)) return fail("bad_request", "publish needs data");
        const keyWhy = idempotencyKeyProblem(frame.idempotencyKey);
        if (keyWhy) return fail("bad_request", keyWhy);
        const publish = { type: "publish" as const, channel, data: frame.data };
        return withId(
          frame.idempotencyKey === undefined
            ? publish
            : { ...publish, idempotencyKey: frame.idempotencyKey as string },
        );
      }
      const why = sinceProblem(frame.since) ?? epochProblem(frame.epoch, frame.since);
      if (why) return fail("bad_request", why);
      const subscribe: Extract<ClientMessage, { type: "subscribe" }> = { type: "subscribe", channel };
      if (frame.since !== undefined) subscribe.since = frame.since as number;
      if (frame.epoch !== undefined) subscribe.epoch = frame.epoch as string;
      return withId(subscribe);
    }
    case undefined:
      return fail("bad_request", "frame needs a type");
    default:
      return fail(
        "unknown_type",
        `unknown type ${JSON.stringify(frame.type)}; expected subscribe, unsubscribe, publish, refresh, rpc or ping`,
      );
  }
}

/** The `id` of a frame that is rejected before parsing (too large), so the error can still be matched. */
export function requestIdOf(text: string): RequestId | undefined {
  try {
    const frame: unknown = JSON.parse(text);
    return typeof frame === "object" && frame !== null ? idOf((frame as { id?: unknown }).id) : undefined;
  } catch {
    return undefined;
  }
}

export function isParseFailure(m: ClientMessage | ParseFailure): m is ParseFailure {
  return "error" in m;
}
