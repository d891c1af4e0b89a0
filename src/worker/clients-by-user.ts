import type { ClientMember } from "./client-member.js";

/**
 * This worker's connections by user, for what the server API does to a user (disconnect, unsubscribe, refresh).
 * Anonymous connections are not kept.
 */
export class ClientsByUser {
  readonly #users = new Map<string, Set<ClientMember>>();

  opened(member: ClientMember): void {
    if (member.user === null) return;
    let set = this.#users.get(member.user);
    if (!set) {
      set = new Set();
      this.#users.set(member.user, set);
    }
    set.add(member);
  }

  closed(member: ClientMember): void {
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
