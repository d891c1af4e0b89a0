import type { ClientMember } from "./client-member.js";

/** Told about every connection that closed (the connection_closed webhook), with why. */
export type ClosedReporter = (member: ClientMember, reason: string) => void;

/**
 * This worker's connections by user, for what the server API does to a user (disconnect, unsubscribe, refresh).
 * Anonymous connections are not kept. Every close passes here, so it also reports them when asked to.
 */
export class ClientsByUser {
  readonly #users = new Map<string, Set<ClientMember>>();
  readonly #reportClosed: ClosedReporter | null;

  constructor(reportClosed: ClosedReporter | null = null) {
    this.#reportClosed = reportClosed;
  }

  opened(member: ClientMember): void {
    if (member.user === null) return;
    let set = this.#users.get(member.user);
    if (!set) {
      set = new Set();
      this.#users.set(member.user, set);
    }
    set.add(member);
  }

  /** `peerReason`: how the connection ended when the server did not end it (client close, link lost). */
  closed(member: ClientMember, peerReason = "client_closed"): void {
    this.#reportClosed?.(member, member.closeReason ?? peerReason);
    if (member.user === null) return;
    const set = this.#users.get(member.user);
    if (!set?.delete(member)) return;
    if (set.size === 0) this.#users.delete(member.user);
  }

  of(user: string): readonly ClientMember[] {
    const set = this.#users.get(user);
    return set ? [...set] : [];
  }
}
