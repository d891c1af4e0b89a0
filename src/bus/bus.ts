/**
 * The bus as the primary sees it: it sequences every channel (offset + epoch), keeps its history for resume, and
 * tells the primary what to deliver. Two implementations: MemoryBus (one host, history in the primary's memory)
 * and RedisBus (`--redis`: history and sequencing in Redis, shared by every host and colour).
 */
import type { HistoryEntry } from "../ipc.js";

/** Why a resume could not be served in full (docs/protocol.md). */
export type GapReason =
  | "epoch_mismatch"
  | "history_trimmed"
  | "offset_ahead"
  | "history_unavailable"
  | "messages_lost";

export type Gap = { reason: GapReason; message: string };

export type PublishRequest = { channel: string; dataJson: string; idempotencyKey: string | null };

/** A sequenced message; `duplicate` when its idempotency key was seen: nothing was delivered again. */
export type Published = { offset: number; epoch: string; duplicate: boolean };

export type Resume = { since: number; epoch: string | null };

/**
 * A subscribe's answer at its join point: the channel's position, then (resume) the history after `since` that is
 * still kept. `gap` when that is not all of it; `recovered` when a resume got everything.
 */
export type JoinReply = {
  offset: number;
  epoch: string;
  history: HistoryEntry[];
  gap: Gap | null;
  recovered: boolean;
};

/** Where a bus sends what it sequenced (the worker bridge routes it to interested workers). */
export interface BusSink {
  deliver(channel: string, offset: number, dataJson: string): void;
  /** Messages of `channel` may not have reached this host's subscribers: their position is now (epoch, offset). */
  lost(channel: string, offset: number, epoch: string): void;
}

export type BusStats = {
  /** Channel states held (subscribed, or with history). */
  channels: number;
  historyMessages: number;
  historyBytes: number;
  /** Messages whose history was dropped to stay within --history-max-bytes. */
  historyEvicted: number;
  idempotencyKeys: number;
  duplicates: number;
};

export interface Bus {
  start(): Promise<void>;
  /** Sequences the messages in order; `done` gets one result per message and is never skipped. */
  publish(messages: readonly PublishRequest[], done: (results: Published[]) => void): void;
  /**
   * Called after the channel's interest includes the asking worker. `done` runs at the join point: after every
   * delivery it will not get, before every one it will.
   */
  join(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void;
  /**
   * The channel's position and the kept history after `resume.since` (all that is kept without one), read without
   * joining (the server API's history). A channel never numbered answers offset 0 and epoch "".
   */
  history(channel: string, resume: Resume | null, done: (reply: JoinReply) => void): void;
  /** The channel's first interested worker came (true) or its last one left (false). */
  interest(channel: string, interested: boolean): void;
  /** Drops what expired (history TTL). */
  sweep(): void;
  stats(): BusStats;
  close(): Promise<void>;
}
