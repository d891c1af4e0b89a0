import { randomBytes } from "node:crypto";

/** A short random string naming one numbering of a channel's offsets (docs/protocol.md "Positions"). */
export function randomEpoch(): string {
  return randomBytes(6).toString("base64url");
}
