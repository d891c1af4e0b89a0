import type { Registry } from "prom-client";
import { collectedCounter, collectedGauge } from "../../primary/collected-metrics.js";
import type { SioCounters } from "./sio-redis-bridge.js";

/** Message counts of the relay, as /metrics and /status show them. */
export type RelayCounts = {
  relayed: number;
  unrelayed: number;
  received: number;
  missed: number;
  echoes: number;
  /** Publishes whose idempotency key Redis had seen: answered with the first offset, not delivered. */
  duplicates: number;
  /** Messages read from history to fill a gap after a rejoin. */
  filled: number;
  /** Times subscribers were told messages may be missing (`history_gap`, reason `messages_lost`). */
  lostNotices: number;
};

export type RelayMetricsSource = {
  counts: RelayCounts;
  sio: SioCounters;
  linkUp(): boolean;
  outages(): number;
  subscriptions(): number;
};

/** Registers the `switchboard_redis_*` metrics (only with --redis). */
export function registerRedisMetrics(registry: Registry, src: RelayMetricsSource): void {
  const { counts, sio } = src;
  const gauge = (name: string, help: string, value: () => number) =>
    collectedGauge(registry, name, help, value);
  const counter = (name: string, help: string, value: () => number) =>
    collectedCounter(registry, name, help, value);
  gauge("switchboard_redis_link_up", "1 while every Redis node this host uses is reachable", () =>
    src.linkUp() ? 1 : 0,
  );
  gauge("switchboard_redis_subscriptions", "Redis channels this host is subscribed to", src.subscriptions);
  counter("switchboard_redis_outages_total", "Times the Redis link went down", src.outages);
  counter(
    "switchboard_redis_relayed_total",
    "Messages published here and sequenced by Redis",
    () => counts.relayed,
  );
  counter(
    "switchboard_redis_unrelayed_total",
    "Messages published here while Redis was unreachable: delivered on this host only",
    () => counts.unrelayed,
  );
  counter(
    "switchboard_redis_received_total",
    "Messages from other hosts received through Redis",
    () => counts.received,
  );
  counter(
    "switchboard_redis_missed_total",
    "Messages other hosts published on channels subscribed here that never arrived (outages)",
    () => counts.missed,
  );
  counter(
    "switchboard_redis_filled_total",
    "Messages that missed this host during an outage, read from history in Redis and delivered in order",
    () => counts.filled,
  );
  counter(
    "switchboard_redis_lost_notices_total",
    "Times this host told a channel's subscribers that messages may be missing (history_gap, messages_lost)",
    () => counts.lostNotices,
  );
  counter(
    "switchboard_redis_echoes_total",
    "This host's own messages back from Redis, dropped",
    () => counts.echoes,
  );
  counter(
    "switchboard_redis_sio_relayed_total",
    "Socket.IO adapter messages sent to other hosts",
    () => sio.relayed,
  );
  counter(
    "switchboard_redis_sio_received_total",
    "Socket.IO adapter messages received from other hosts",
    () => sio.received,
  );
  counter(
    "switchboard_redis_sio_unrelayed_total",
    "Socket.IO adapter messages that could not be sent to other hosts",
    () => sio.unrelayed,
  );
}
