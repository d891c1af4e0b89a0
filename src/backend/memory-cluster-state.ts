import type { PresenceEntry } from "../ipc.js";
import {
  type ChannelPage,
  type ClusterEvent,
  type ClusterState,
  type PresenceLeave,
  type PresenceStats,
  patternRegExp,
} from "./cluster-state.js";

type ChannelPresence = { clients: Map<string, PresenceEntry>; users: Map<string, number> };

/** One host: the whole cluster is this primary, so its own view is the answer. */
export class MemoryClusterState implements ClusterState {
  readonly #occupied = new Set<string>();
  readonly #presence = new Map<string, ChannelPresence>();
  #listener: (event: ClusterEvent) => void = () => {};

  async start(): Promise<void> {}

  async occupancy(channel: string, occupied: boolean): Promise<boolean> {
    if (occupied) {
      if (this.#occupied.has(channel)) return false;
      this.#occupied.add(channel);
      return true;
    }
    return this.#occupied.delete(channel);
  }

  async join(channel: string, entry: PresenceEntry): Promise<boolean> {
    let p = this.#presence.get(channel);
    if (!p) {
      p = { clients: new Map(), users: new Map() };
      this.#presence.set(channel, p);
    }
    if (p.clients.has(entry.client)) return false;
    p.clients.set(entry.client, entry);
    if (entry.user === null) return true;
    const n = (p.users.get(entry.user) ?? 0) + 1;
    p.users.set(entry.user, n);
    return n === 1;
  }

  async leave(channel: string, client: string): Promise<PresenceLeave | null> {
    const p = this.#presence.get(channel);
    const entry = p?.clients.get(client);
    if (!p || !entry) return null;
    p.clients.delete(client);
    let lastOfUser = true;
    if (entry.user !== null) {
      const n = (p.users.get(entry.user) ?? 1) - 1;
      if (n > 0) {
        p.users.set(entry.user, n);
        lastOfUser = false;
      } else p.users.delete(entry.user);
    }
    if (p.clients.size === 0) this.#presence.delete(channel);
    return { channel, entry, lastOfUser };
  }

  async presence(channel: string): Promise<PresenceEntry[]> {
    return [...(this.#presence.get(channel)?.clients.values() ?? [])];
  }

  async stats(channel: string): Promise<PresenceStats> {
    const p = this.#presence.get(channel);
    return { clients: p?.clients.size ?? 0, users: p?.users.size ?? 0 };
  }

  async channels(pattern: string | null, cursor: string | null, limit: number): Promise<ChannelPage> {
    const match = pattern ? patternRegExp(pattern) : null;
    // Names in order, resumed after the cursor (the last name of the previous page): stable while channels change.
    const names = [...this.#occupied].filter(
      (c) => (!match || match.test(c)) && (cursor === null || c > cursor),
    );
    names.sort();
    const page = names.slice(0, limit);
    return { channels: page, cursor: names.length > limit ? (page[page.length - 1] ?? null) : null };
  }

  broadcast(event: ClusterEvent): void {
    queueMicrotask(() => this.#listener(event));
  }

  onEvent(listener: (event: ClusterEvent) => void): void {
    this.#listener = listener;
  }

  onExpired(): void {}

  roundTripSeconds(): null {
    return null;
  }

  async close(): Promise<void> {}
}
