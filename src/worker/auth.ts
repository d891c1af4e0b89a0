import { createPublicKey, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { type JWTPayload, jwtVerify, type KeyObject } from "jose";
import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";

/** What a verified connection token says: who, which channels (all when absent), until when (unix seconds). */
export type Claims = { sub?: string; channels?: string[]; exp?: number };

export type TokenVerifier = (token: string | undefined) => Promise<Claims | null>;

/**
 * Connection tokens: HS256 with --jwt-secret, RS256/ES256 with --jwt-public-key; none configured = anonymous.
 * `--jwt-audience` / `--jwt-issuer` are checked when set. A `channels` claim (names, or prefixes ending in `*`)
 * limits what the connection may subscribe to; one that is not an array of strings is refused, never read as
 * "everything". `exp` is enforced on open connections too (the gateways close them at that time).
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
  const checks = {
    algorithms,
    ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
    ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
  };
  return async (token) => {
    if (!key) return null;
    if (!token) throw new SwitchboardError("unauthorized", "a connection token is required");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, checks));
    } catch (err) {
      throw new SwitchboardError("unauthorized", `invalid token: ${(err as Error).message}`);
    }
    const claims: Claims = {};
    if (payload.sub !== undefined) claims.sub = payload.sub;
    if (payload.exp !== undefined) claims.exp = payload.exp;
    if (payload.channels !== undefined) {
      const channels = payload.channels;
      if (!Array.isArray(channels) || !channels.every((c) => typeof c === "string")) {
        throw new SwitchboardError(
          "unauthorized",
          'invalid token: the "channels" claim must be an array of channel names (or prefixes ending in *)',
        );
      }
      claims.channels = channels;
    }
    return claims;
  };
}

/** True while a token with these claims has not expired (no `exp`: never). */
export function unexpired(claims: Claims | null, nowMs = Date.now()): boolean {
  return claims?.exp === undefined || claims.exp * 1000 > nowMs;
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

/** Headers a proxy adds for the client it forwards: with any of them, the loopback peer is not the caller. */
const FORWARDING_HEADERS = [
  "forwarded",
  "via",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "x-original-forwarded-for",
];

function forwardedFor(req: IncomingMessage): string | undefined {
  for (const name of Object.keys(req.headers)) {
    if (name.startsWith("x-forwarded-") || FORWARDING_HEADERS.includes(name)) return name;
  }
  return undefined;
}

/**
 * Publish API access: with --api-key, `Authorization: Bearer <key>` or `X-API-Key`; without one, fail closed:
 * direct loopback peers only, and no request that carries a forwarding header of any kind (a proxy in front
 * forwards for callers this process cannot see, and a proxy that sets only some headers must not open the API).
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
  if (!isLoopback(req.socket.remoteAddress)) {
    throw new SwitchboardError("forbidden", "no --api-key is set, so the API accepts loopback callers only");
  }
  const header = forwardedFor(req);
  if (header !== undefined) {
    throw new SwitchboardError(
      "forbidden",
      `no --api-key is set, so the API refuses forwarded requests (${header}): set --api-key behind a proxy`,
    );
  }
}
