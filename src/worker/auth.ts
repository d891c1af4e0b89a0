import { createPublicKey, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { type JWTPayload, jwtVerify, type KeyObject } from "jose";
import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";

/** What a verified connection token says: who, and which channels (all when absent). */
export type Claims = { sub?: string; channels?: string[] };

export type TokenVerifier = (token: string | undefined) => Promise<Claims | null>;

/**
 * Connection tokens: HS256 with --jwt-secret, RS256/ES256 with --jwt-public-key; none configured = anonymous.
 * A `channels` claim (names, or prefixes ending in `*`) limits what the connection may subscribe to.
 */
export function createTokenVerifier(config: Config): TokenVerifier {
  let key: Uint8Array | KeyObject | null = null;
  let algorithms: string[] = [];
  if (config.jwtSecret) {
    key = new TextEncoder().encode(config.jwtSecret);
    algorithms = ["HS256"];
  } else if (config.jwtPublicKey) {
    key = createPublicKey(config.jwtPublicKey.replace(/\\n/g, "\n"));
    algorithms = ["RS256", "ES256"];
  }
  return async (token) => {
    if (!key) return null;
    if (!token) throw new SwitchboardError("unauthorized", "a connection token is required");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, { algorithms }));
    } catch (err) {
      throw new SwitchboardError("unauthorized", `invalid token: ${(err as Error).message}`);
    }
    const channels = Array.isArray(payload.channels)
      ? payload.channels.filter((c): c is string => typeof c === "string")
      : undefined;
    return { sub: payload.sub, channels };
  };
}

/** True when the token's `channels` claim (if any) grants `channel`. */
export function grants(claims: Claims | null, channel: string): boolean {
  if (!claims?.channels) return true;
  return claims.channels.some((c) => (c.endsWith("*") ? channel.startsWith(c.slice(0, -1)) : c === channel));
}

function bearerOf(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith("Bearer ") ? header.slice(7) : undefined;
}

/** The token of an HTTP request: `Authorization: Bearer` or `?token=`. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const bearer = bearerOf(req);
  if (bearer !== undefined) return bearer;
  const q = req.url?.indexOf("?") ?? -1;
  if (q === -1 || !req.url) return undefined;
  return new URLSearchParams(req.url.slice(q + 1)).get("token") ?? undefined;
}

function isLoopback(address: string | undefined): boolean {
  return !!address && (address.startsWith("127.") || address === "::1" || address.startsWith("::ffff:127."));
}

/**
 * Publish API access: with --api-key, `Authorization: Bearer <key>` or `X-API-Key`; without one, loopback
 * callers only (a request forwarded by a proxy for someone else is not loopback).
 */
export function checkApiAccess(req: IncomingMessage, apiKey: string | null): void {
  if (apiKey) {
    const given = bearerOf(req) ?? (req.headers["x-api-key"] as string | undefined);
    if (!given)
      throw new SwitchboardError("unauthorized", "an API key is required (Authorization: Bearer <key>)");
    const a = Buffer.from(given);
    const b = Buffer.from(apiKey);
    if (a.length !== b.length || !timingSafeEqual(a, b))
      throw new SwitchboardError("forbidden", "wrong API key");
    return;
  }
  const forwarded = req.headers["x-forwarded-for"];
  const forwardedOk =
    forwarded === undefined ||
    String(forwarded)
      .split(",")
      .every((a) => isLoopback(a.trim()));
  if (!isLoopback(req.socket.remoteAddress) || !forwardedOk) {
    throw new SwitchboardError(
      "forbidden",
      "no --api-key is set, so the publish API accepts loopback callers only",
    );
  }
}
