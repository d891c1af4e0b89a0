import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";
import type { Claims, TokenVerifier } from "./auth.js";

/** How often open connections' token expiry is checked (a frame sent after `exp` is refused at once anyway). */
const EXPIRY_SWEEP_MS = 1000;

/**
 * The claims a refresh gives a connection: a valid token for the same user (`sub`), whose `exp` then replaces the
 * old one. Throws unauthorized for a bad token, forbidden for another user, bad_request where no tokens are used.
 */
export async function refreshedClaims(
  verify: TokenVerifier,
  current: Claims | null,
  token: string,
): Promise<Claims> {
  const next = await verify(token);
  if (next === null) {
    throw new SwitchboardError(
      "bad_request",
      "no connection tokens are in use here (--jwt-secret, --jwt-public-key)",
    );
  }
  if ((next.sub ?? null) !== (current?.sub ?? null)) {
    throw new SwitchboardError("forbidden", "a refresh token must name the connection's user (sub)");
  }
  return next;
}

/**
 * Runs `sweep(now)` every second while connections can expire: connection tokens (`exp`) or a connect hook
 * (`expireAt`) in use; returns the timer (null when neither is).
 */
export function startExpirySweep(config: Config, sweep: (nowMs: number) => void): NodeJS.Timeout | null {
  if (!config.jwtSecret && !config.jwtPublicKey && !config.connectHook) return null;
  const timer = setInterval(() => sweep(Date.now()), EXPIRY_SWEEP_MS);
  timer.unref();
  return timer;
}

export const EXPIRED_MESSAGE =
  "the connection's token expired; refresh it in time or reconnect with a new one";
