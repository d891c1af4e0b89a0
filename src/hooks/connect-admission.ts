import type { IncomingHttpHeaders } from "node:http";
import { type ErrorCode, errorReply } from "../errors.js";
import type { Claims, TokenVerifier } from "../worker/auth.js";
import type { ClientMember } from "../worker/client-member.js";
import type { ConnectDecision, HookSession } from "./backend-hooks.js";

/**
 * What both gateways do around the connect hook (docs/backend.md): what the request says about the client, whose
 * token is checked, how a session lands on the member and how a refusal reaches each protocol's client.
 */

/**
 * The connection's claims. With a connect hook the backend decides who connects, so a token is optional: verified
 * when given (an invalid one is still refused), none is fine.
 */
export function claimsOf(
  verify: TokenVerifier,
  token: string | undefined,
  hookDecides: boolean,
): Promise<Claims | null> {
  if (hookDecides && token === undefined) return Promise.resolve(null);
  return verify(token);
}

/**
 * The client's address: the peer (the primary hands the socket over as it is), or the first `X-Forwarded-For`
 * entry when a proxy in front sent one (HAProxy's `option forwardfor`); the backend decides whether to trust it.
 */
export function remoteAddrOf(headers: IncomingHttpHeaders, peer: string | undefined): string {
  const forwarded = headers["x-forwarded-for"];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(",", 1)[0]?.trim();
  return first || (peer ?? "");
}

/** The query string as an object (a repeated key: its last value). */
export function queryOf(url: string | undefined): Record<string, string> {
  const q = url?.indexOf("?") ?? -1;
  if (q === -1 || !url) return {};
  return Object.fromEntries(new URLSearchParams(url.slice(q + 1)));
}

/** Only the headers named by --hook-headers (lowercase names; repeated ones joined as HTTP joins them). */
export function pickHeaders(headers: IncomingHttpHeaders, names: readonly string[]): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of names) {
    const value = headers[name];
    if (value !== undefined) picked[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return picked;
}

/**
 * The connect hook's word on the member, before it counts as open (its user is who it is from then on); its
 * expiry goes to the gateway's SessionRefresher.
 */
export function applySession(member: ClientMember, session: HookSession): void {
  member.user = session.user;
  member.meta = session.meta;
  member.info = session.info;
}

/** Seconds a client refused for an unavailable backend is told to wait: 1–5, jittered so they do not return at once. */
export function retryAfterSeconds(): number {
  return 1 + Math.floor(Math.random() * 5);
}

type Refused = Extract<ConnectDecision, { kind: "refuse" | "unavailable" }>;

/** A raw upgrade's refusal: 403 with the backend's code, or 503 backend_unavailable with a Retry-After. */
export function upgradeRefusal(decision: Refused): { status: number; body: unknown; headers: string } {
  if (decision.kind === "refuse") {
    const { status, body } = errorReply("forbidden", decision.error.message);
    return {
      status,
      body: { error: { ...body.error, backendCode: decision.error.backendCode } },
      headers: "",
    };
  }
  const { status, body } = errorReply("backend_unavailable", decision.error.message);
  return { status, body, headers: `Retry-After: ${retryAfterSeconds()}\r\n` };
}

/** What a Socket.IO client gets as `connect_error` (err.message, err.data) when the connect hook said no. */
export function connectError(
  decision: Exclude<ConnectDecision, { kind: "accept" }>,
): Error & { data: object } {
  let data: { code: ErrorCode | "disconnected" } & Record<string, unknown>;
  let message: string;
  if (decision.kind === "refuse") {
    message = decision.error.message;
    data = { code: "forbidden", backendCode: decision.error.backendCode, message };
  } else if (decision.kind === "disconnect") {
    message = decision.reason;
    data = { code: "disconnected", reason: decision.reason, reconnect: false };
  } else {
    message = decision.error.message;
    data = { code: "backend_unavailable", retryAfterMs: retryAfterSeconds() * 1000 };
  }
  return Object.assign(new Error(message), { data });
}

/** A WebSocket close reason within the 123 bytes a close frame allows. */
export function closeReason(reason: string): string {
  let r = reason;
  while (Buffer.byteLength(r) > 123) r = r.slice(0, -1);
  return r;
}
