import { randomBytes } from "node:crypto";
import type { Claims } from "./auth.js";
import type { Member } from "./channel-registry.js";
import { TokenBucket } from "./token-bucket.js";

/** How long a reader may stay more than --max-buffered behind before it counts as a slow consumer. */
export const SLOW_GRACE_MS = 1000;
/** Unsent (and about to be queued) bytes beyond this many times --max-buffered close the connection at once. */
export const HARD_LIMIT_FACTOR = 4;

/** Client ids are unique across workers, hosts and restarts: a random prefix per process, then a counter. */
const ID_PREFIX = randomBytes(6).toString("base64url");
let lastId = 0;

/** A serial for a connection about to be made: its id is known before the member exists (the connect hook's). */
export function nextClientSerial(): number {
  return ++lastId;
}

/** The client id of a serial. */
export function clientIdOf(serial: number): string {
  return `${ID_PREFIX}${serial.toString(36)}`;
}

/**
 * What every client connection holds, whatever its protocol: the token's claims, its rate budget and its
 * channels. Kept small: idle connections are most of a server's memory, so the channel set is made on first use.
 */
export abstract class ClientMember implements Member {
  abstract readonly protocol: "raw" | "sio";
  abstract readonly closed: boolean;
  /** The token's claims; a refresh replaces them. */
  claims: Claims | null;
  /** Who it is (the token's `sub` or the connect hook's `user`); null: anonymous. */
  user: string | null;
  /** What the connect hook said about it: `meta` goes back to the backend with each hook call, `info` to presence. */
  meta: unknown = undefined;
  info: unknown = undefined;
  /** Why the server closed it (slow_consumer, token_expired, disconnected, draining…); null: the client or its link. */
  closeReason: string | null = null;
  /** When the connection must be refreshed (unix seconds, from the connect hook's expireAt); 0: never. */
  expireAt = 0;
  readonly #serial: number;
  readonly budget: TokenBucket;
  #channels: Set<string> | null = null;
  /** Since when its socket has held more than --max-buffered unsent (0: it has not). */
  #behindSince = 0;

  constructor(claims: Claims | null, rate: number, serial = nextClientSerial()) {
    this.#serial = serial;
    this.claims = claims;
    this.user = claims?.sub ?? null;
    this.budget = new TokenBucket(rate);
  }

  /** The client's id, in hook calls, presence and webhooks. */
  get id(): string {
    return clientIdOf(this.#serial);
  }

  get channels(): Set<string> {
    this.#channels ??= new Set();
    return this.#channels;
  }

  /**
   * The slow-consumer rule of both protocols. Slow is only what the socket could not take: more than
   * --max-buffered unsent for longer than a grace (a burst a fast reader is still reading is not slow), or unsent
   * and `pending` bytes together above a hard multiple of it (memory stays bounded whatever the grace).
   */
  isSlowConsumer(unsent: number, pending: number, maxBufferedBytes: number): boolean {
    if (unsent + pending > HARD_LIMIT_FACTOR * maxBufferedBytes) return true;
    if (unsent <= maxBufferedBytes) {
      this.#behindSince = 0;
      return false;
    }
    const now = Date.now();
    if (this.#behindSince === 0) this.#behindSince = now;
    return now - this.#behindSince > SLOW_GRACE_MS;
  }
}
