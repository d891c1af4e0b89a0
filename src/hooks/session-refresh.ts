import type { ClientMember } from "../worker/client-member.js";
import type { BackendHooks } from "./backend-hooks.js";

/** Refresh calls that fail (backend unavailable) are tried this many times in all before the session expires. */
const ATTEMPTS = 3;
/** Past expireAt the connection is kept while retrying: a quarter of the session's last lifetime, at least this. */
const MIN_GRACE_MS = 10_000;

type Refreshing = { attempt: number; deadline: number };

/**
 * Sessions the connect hook gave an `expireAt`: at that time the refresh hook is asked for a new one (no refresh
 * hook: the session expires, as a token does). A backend that cannot answer is retried a few times with backoff
 * within a grace, the connection kept meanwhile. Only sessions with an expiry, or a refresh running, are held.
 */
export class SessionRefresher {
  readonly #hooks: BackendHooks;
  readonly #expire: (member: ClientMember) => void;
  /** When each session's current expiry was given: its lifetime sets the grace. */
  readonly #grantedAt = new WeakMap<ClientMember, number>();
  readonly #refreshing = new Map<ClientMember, Refreshing>();

  /** `expire` ends a connection whose session ran out (token_expired, close 4001). */
  constructor(hooks: BackendHooks, expire: (member: ClientMember) => void) {
    this.#hooks = hooks;
    this.#expire = expire;
  }

  /** The member's session lasts until `expireAt` (unix seconds; 0: forever). */
  grant(member: ClientMember, expireAt: number): void {
    member.expireAt = expireAt;
    if (expireAt > 0) this.#grantedAt.set(member, Date.now());
  }

  /** From a gateway's expiry sweep, for each open connection. */
  check(member: ClientMember, nowMs: number): void {
    if (member.expireAt === 0 || member.expireAt * 1000 > nowMs || this.#refreshing.has(member)) return;
    if (!this.#hooks.refreshHook) return this.#expire(member);
    const expiresMs = member.expireAt * 1000;
    const lifetime = expiresMs - (this.#grantedAt.get(member) ?? expiresMs);
    const state = { attempt: 0, deadline: expiresMs + Math.max(MIN_GRACE_MS, lifetime / 4) };
    this.#refreshing.set(member, state);
    this.#attempt(member, state);
  }

  #attempt(member: ClientMember, state: Refreshing): void {
    if (member.closed) return void this.#refreshing.delete(member);
    state.attempt += 1;
    this.#hooks.refresh(member).then(
      (expireAt) => {
        this.#refreshing.delete(member);
        if (member.closed) return;
        if (expireAt === null) this.#expire(member);
        else this.grant(member, expireAt);
      },
      () => {
        const left = state.deadline - Date.now();
        if (member.closed || state.attempt >= ATTEMPTS || left <= 0) {
          this.#refreshing.delete(member);
          if (!member.closed) this.#expire(member);
          return;
        }
        // Jittered, spread over what is left of the grace for the attempts that remain.
        const delay = (left / (ATTEMPTS - state.attempt + 1)) * (0.5 + Math.random() / 2);
        setTimeout(() => this.#attempt(member, state), delay).unref();
      },
    );
  }
}
