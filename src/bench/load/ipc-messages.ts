/**
 * Messages between the bench runner and its load-client processes (child_process IPC, JSON serialisation).
 */
import type { HistogramSnapshot } from "../histogram.js";
import type { Protocol } from "./client-conn.js";
import type { StepReport } from "./delivery-stats.js";

/** A connection not open this long after connect() is given up (and counted as failed). */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectCommand {
  cmd: "connect";
  port: number;
  protocol: Protocol;
  count: number;
  /** Global index of this process's first connection (channel assignment is by global index). */
  firstIndex: number;
  localAddresses: string[];
  /** Handshakes in flight at once. */
  concurrency: number;
}

export interface SubscribeCommand {
  cmd: "subscribe";
  /**
   * Connection with global index g subscribes to `perConnection` channels: `${prefix}${(g * perConnection + k) %
   * channels}` for k below `perConnection`.
   */
  channels: number;
  prefix: string;
  perConnection: number;
  timeoutMs: number;
}

export interface StepCommand {
  cmd: "received" | "take";
  step: number;
}

export interface PublishLoadCommand {
  cmd: "publish-load";
  port: number;
  connections: number;
  durationMs: number;
  channel: string;
  localAddress: string;
}

export interface SimpleCommand {
  cmd: "status" | "close";
}

export type LoadCommand =
  | ConnectCommand
  | SubscribeCommand
  | StepCommand
  | PublishLoadCommand
  | SimpleCommand;

/** Every command travels with an id; the reply carries it back. */
export type LoadRequest = LoadCommand & { id: number };

export interface ConnectResult {
  opened: number;
  failed: number;
  /** From the first connect() to the last handshake completed, in ms. */
  elapsedMs: number;
  /** Connections given up after the handshake timeout, by the step they were stuck at. */
  timedOut?: string;
}

export interface SubscribeResult {
  acked: number;
  errors: number;
}

export interface StatusResult {
  /** Connections that had opened and were closed by the server or the network. */
  droppedByServer: number;
  /** Deliveries that arrived after their step had been collected. */
  late: number;
  /** Frames that looked like deliveries but had no readable timestamp. */
  unparsed: number;
  /** process.cpuUsage() user + system, in ms. */
  cpuMs: number;
  rssBytes: number;
}

export interface PublishLoadResult {
  requests: number;
  errors: number;
  non200: number;
  elapsedMs: number;
  connects: number;
  latency: HistogramSnapshot;
}

export type LoadResult =
  | ConnectResult
  | SubscribeResult
  | StatusResult
  | PublishLoadResult
  | StepReport
  | number
  | null;

export type LoadEvent =
  | { evt: "reply"; id: number; ok: true; result: LoadResult }
  | { evt: "reply"; id: number; ok: false; error: string }
  | { evt: "progress"; done: number; failed: number };

export function isLoadRequest(value: unknown): value is LoadRequest {
  if (typeof value !== "object" || value === null) return false;
  const rec = value as Record<string, unknown>;
  return typeof rec.id === "number" && typeof rec.cmd === "string";
}

export function isLoadEvent(value: unknown): value is LoadEvent {
  if (typeof value !== "object" || value === null) return false;
  const evt = (value as Record<string, unknown>).evt;
  return evt === "reply" || evt === "progress";
}
