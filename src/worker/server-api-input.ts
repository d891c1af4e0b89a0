import { SwitchboardError } from "../errors.js";
import type { OutgoingMessage, Question, UserAction } from "../ipc.js";
import { checkedChannel, encodedData, idempotencyKeyProblem } from "../protocol/client-message.js";

/**
 * What the server API's requests ask, read from their query or body with every check (docs/backend.md): each
 * function returns the question or action for the primary, or throws a bad_request naming the field.
 */

export type InputLimits = { maxChannelLength: number; maxPayloadBytes: number };

const MAX_BROADCAST_CHANNELS = 1000;
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 100;
const MAX_REASON_LENGTH = 120;
const MAX_USER_LENGTH = 256;

/** An integer query parameter within [min, max], or null when absent. */
function optionalInt(url: URL, name: string, min: number, max: number): number | null {
  const text = url.searchParams.get(name);
  if (text === null) return null;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max)
    throw new SwitchboardError("bad_request", `${name} must be an integer of ${min}-${max}`);
  return n;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `GET /api/history?channel=&since=&epoch=&limit=`. */
export function historyQuestion(url: URL, limits: InputLimits): Question {
  const channel = checkedChannel(url.searchParams.get("channel"), limits.maxChannelLength);
  const since = optionalInt(url, "since", 0, Number.MAX_SAFE_INTEGER);
  const limit = optionalInt(url, "limit", 1, MAX_PAGE) ?? DEFAULT_PAGE;
  const epoch = url.searchParams.get("epoch");
  if (epoch !== null && since === null)
    throw new SwitchboardError("bad_request", "epoch goes with since (the position to read after)");
  return { kind: "history", channel, since, epoch, limit };
}

/** `GET /api/channels?pattern=&cursor=&limit=`. */
export function channelsQuestion(url: URL, limits: InputLimits): Question {
  const pattern = url.searchParams.get("pattern");
  if (pattern !== null && (pattern.length === 0 || pattern.length > limits.maxChannelLength))
    throw new SwitchboardError("bad_request", `pattern must be 1-${limits.maxChannelLength} characters`);
  const limit = optionalInt(url, "limit", 1, MAX_PAGE) ?? DEFAULT_PAGE;
  return { kind: "channels", pattern, cursor: url.searchParams.get("cursor"), limit };
}

/** `POST /api/broadcast {channels, data, idempotencyKey?}`: the same message for each channel. */
export function broadcastMessages(body: unknown, limits: InputLimits): OutgoingMessage[] {
  if (!isObject(body) || !Array.isArray(body.channels) || !("data" in body))
    throw new SwitchboardError("bad_request", 'body must be {"channels":[…],"data":…}');
  const list = body.channels as unknown[];
  if (list.length === 0 || list.length > MAX_BROADCAST_CHANNELS)
    throw new SwitchboardError("bad_request", `channels must hold 1-${MAX_BROADCAST_CHANNELS} names`);
  const keyWhy = idempotencyKeyProblem(body.idempotencyKey);
  if (keyWhy) throw new SwitchboardError("bad_request", keyWhy);
  const dataJson = encodedData(body.data, limits.maxPayloadBytes);
  const key = (body.idempotencyKey as string | undefined) ?? null;
  return list.map((c, i) => [checkedChannel(c, limits.maxChannelLength, `channels[${i}]: `), dataJson, key]);
}

/** `POST /api/disconnect`, `/api/unsubscribe`, `/api/refresh`: what to do to a user's connections. */
export function userAction(path: string, body: unknown, limits: InputLimits): UserAction {
  if (
    !isObject(body) ||
    typeof body.user !== "string" ||
    body.user.length === 0 ||
    body.user.length > MAX_USER_LENGTH
  )
    throw new SwitchboardError("bad_request", 'body must name a "user" (a string of 1-256 characters)');
  const user = body.user;
  if (path === "/api/unsubscribe")
    return { kind: "unsubscribe", user, channel: checkedChannel(body.channel, limits.maxChannelLength) };
  if (path === "/api/refresh") {
    const expireAt = body.expireAt;
    if (typeof expireAt !== "number" || !Number.isInteger(expireAt) || expireAt * 1000 <= Date.now())
      throw new SwitchboardError("bad_request", "expireAt must be a unix time (seconds) in the future");
    return { kind: "refresh", user, expireAt };
  }
  const reconnect = body.reconnect ?? true;
  if (typeof reconnect !== "boolean")
    throw new SwitchboardError("bad_request", "reconnect must be true or false");
  const code = body.code ?? (reconnect ? 4009 : 4010);
  if (typeof code !== "number" || !Number.isInteger(code) || code < 4000 || code > 4999)
    throw new SwitchboardError("bad_request", "code must be a WebSocket close code of 4000-4999");
  const reason = body.reason ?? "disconnected by the server";
  if (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)
    throw new SwitchboardError(
      "bad_request",
      `reason must be a string of at most ${MAX_REASON_LENGTH} characters`,
    );
  return { kind: "disconnect", user, code, reason, reconnect };
}
