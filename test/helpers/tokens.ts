import { createHmac } from "node:crypto";

/** An HS256 JWT for `payload`, signed with `secret` (what a backend issues to its clients). */
export function hs256(payload: Record<string, unknown>, secret: string): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(payload)}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

/** Unix time `s` seconds from now. */
export const inSeconds = (s: number): number => Math.floor(Date.now() / 1000) + s;
