import type { Claims } from "./auth.js";
import type { Member } from "./channel-registry.js";
import { TokenBucket } from "./token-bucket.js";

/**
 * What every client connection holds, whatever its protocol: the token's claims, its rate budget and its
 * channels. Kept small: idle connections are most of a server's memory, so the channel set is made on first use.
 */
export abstract class ClientMember implements Member {
  abstract readonly protocol: "raw" | "sio";
  abstract readonly closed: boolean;
  /** The token's claims; a refresh replaces them. */
  claims: Claims | null;
  readonly budget: TokenBucket;
  #channels: Set<string> | null = null;

  constructor(claims: Claims | null, rate: number) {
    this.claims = claims;
    this.budget = new TokenBucket(rate);
  }

  get channels(): Set<string> {
    this.#channels ??= new Set();
    return this.#channels;
  }
}
