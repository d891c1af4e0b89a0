/**
 * Timing the in-band token refresh: the SDK reads a JWT's `exp` (without verifying it: the server does that) to
 * send a new token from `getToken` before the server would close the connection with 4001.
 */

/** Seconds since the epoch at which a JWT expires, or null when it is not a JWT with a numeric `exp`. */
export function tokenExpiry(token: string | undefined): number | null {
  const payload = token?.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json = JSON.parse(globalThis.atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="))) as {
      exp?: unknown;
    };
    return typeof json.exp === "number" ? json.exp : null;
  } catch {
    return null;
  }
}

/** How long to wait before refreshing a token that expires at `exp`: a tenth of its remaining life, 5 s to 60 s. */
export function refreshDelayMs(expSeconds: number, nowMs: number): number {
  const left = expSeconds * 1000 - nowMs;
  const margin = Math.min(60_000, Math.max(5_000, left / 10));
  return Math.max(0, left - margin);
}
