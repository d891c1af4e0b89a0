import { createHmac } from "node:crypto";

/** The header every hook (and webhook) request carries when --hook-secret is set. */
export const SIGNATURE_HEADER = "x-switchboard-signature";

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`: what the backend recomputes and compares (docs/backend.md). */
export function signatureOf(body: string | Buffer, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}
