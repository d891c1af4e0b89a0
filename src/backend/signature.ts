import { createHmac } from "node:crypto";

/** The header every hook and webhook request carries when --hook-secret is set. */
export const SIGNATURE_HEADER = "x-switchboard-signature";

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`: what the backend recomputes to trust a request. */
export function signature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}
