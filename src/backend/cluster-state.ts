import type { PresenceEntry, UserAction } from "../ipc.js";

/** A client that left a presence channel; `lastOfUser`: no other connection of its user is left in it anywhere. */
export type PresenceLeave = { channel: string; entry: PresenceEntry; lastOfUser: boolean };

export type PresenceStats = { clients: number; users: number };

/** What goes to every host: a join/leave message for subscribers, or a server API action on a user. */
export type ClusterEvent =
  | { kind: "presence"; channel: string; change: "join" | "leave"; entry: PresenceEntry }
  | { kind: "userAction"; action: UserAction };

export type ChannelPage = { channels: string[]; cursor: string | null };

/**
 * What hosts share about channels and clients beyond messages: occupancy (for channel_occupied / _vacated),
 * presence (clients and distinct users per channel, counted as they change so a count is O(1)), and events for
 * every host. One host: in the primary's memory. With --redis: in Redis, where each host's entries live as long as
 * it refreshes them (a dead host's clients leave after --presence-ttl).
 */
export interface ClusterState {
  start(): Promise<void>;
  /** This host gained its first subscriber of `channel` (true) or lost its last: true when the whole cluster did. */
  occupancy(channel: string, occupied: boolean): Promise<boolean>;
  /** True when this is the first connection of its user (or an anonymous client) in the channel anywhere. */
  join(channel: string, entry: PresenceEntry): Promise<boolean>;
  /** The leave, or null when the client was not there. */
  leave(channel: string, client: string): Promise<PresenceLeave | null>;
  presence(channel: string): Promise<PresenceEntry[]>;
  stats(channel: string): Promise<PresenceStats>;
  /** Occupied channels (anywhere), `pattern` with `*` wildcards, a page at a time. */
  channels(pattern: string | null, cursor: string | null, limit: number): Promise<ChannelPage>;
  /** Sends `event` to every host, this one included (each gets it through `onEvent`). */
  broadcast(event: ClusterEvent): void;
  onEvent(listener: (event: ClusterEvent) => void): void;
  /** Channels another host stopped refreshing were vacated, and clients of theirs left (found by the reaper). */
  onExpired(listener: (vacated: string[], leaves: PresenceLeave[]) => void): void;
  /** The last round trip to the shared store, seconds (null: none kept, or not answering). */
  roundTripSeconds(): number | null;
  close(): Promise<void>;
}

/** `*` wildcards to a RegExp on whole names. */
export function patternRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*");
  return new RegExp(`^${escaped}$`);
}
