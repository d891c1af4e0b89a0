import { Counter, Gauge, type Registry } from "prom-client";
import type { WorkerStats } from "../ipc.js";
import type { AdminDeps, Totals } from "./admin-server.js";
import {
  collectedCounter,
  collectedCounterBy,
  collectedGauge,
  collectedHistogram,
} from "./collected-metrics.js";
import type { WorkerInfo } from "./supervisor.js";

/**
 * Every metric of the host on /metrics: the workers' counters summed by the primary (`totals`, which keeps those of
 * exited workers), per-worker gauges labelled by slot, and the primary's own figures.
 */
export function registerHostMetrics(registry: Registry, d: AdminDeps, totals: () => Totals): void {
  const live = () =>
    [...d.supervisor.workers].map((w) => w.stats).filter((s): s is WorkerStats => s !== null);
  new Gauge({
    name: "switchboard_connections",
    help: "Open client connections",
    labelNames: ["protocol"],
    registers: [registry],
    collect() {
      this.set(
        { protocol: "raw" },
        sum(live(), (s) => s.rawConnections),
      );
      this.set(
        { protocol: "socketio" },
        sum(live(), (s) => s.sioConnections),
      );
    },
  });
  new Gauge({
    name: "switchboard_workers",
    help: "Worker processes by state",
    labelNames: ["state"],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of d.supervisor.workers) this.inc({ state: w.state });
    },
  });
  collectedCounter(
    registry,
    "switchboard_worker_restarts_total",
    "Workers restarted after dying",
    () => d.supervisor.restarts,
  );
  collectedCounter(
    registry,
    "switchboard_published_total",
    "Messages sequenced by this host",
    () => d.bridge.published,
  );
  collectedCounter(
    registry,
    "switchboard_deliveries_total",
    "Messages written to clients",
    () => totals().delivered,
  );
  collectedCounter(
    registry,
    "switchboard_socket_writes_total",
    "Socket writes of queued frames (deliveries, replies): deliveries per write shows how much the write passes coalesce",
    () => totals().socketWrites,
  );
  collectedCounter(
    registry,
    "switchboard_slow_consumers_total",
    "Connections closed for unsent bytes over --max-buffered",
    () => totals().slowConsumers,
  );
  collectedCounterBy(
    registry,
    "switchboard_errors_total",
    "Errors answered to clients, by code",
    "code",
    () => totals().errors,
  );
  collectedGauge(
    registry,
    "switchboard_channels",
    "Channels with at least one subscriber on this host",
    () => d.bridge.interest.size,
  );
  const bus = () => d.bus.stats();
  collectedGauge(
    registry,
    "switchboard_channel_states",
    "Channel states the bus holds on this host (subscribed, or with history in memory)",
    () => bus().channels,
  );
  collectedGauge(
    registry,
    "switchboard_history_bytes",
    "History held in this host's memory, bytes (capped by --history-max-bytes; 0 with Redis)",
    () => bus().historyBytes,
  );
  collectedGauge(
    registry,
    "switchboard_history_messages",
    "Messages held in this host's memory for resume",
    () => bus().historyMessages,
  );
  collectedCounter(
    registry,
    "switchboard_history_evicted_total",
    "Messages dropped from history to stay within --history-max-bytes",
    () => bus().historyEvicted,
  );
  collectedCounter(
    registry,
    "switchboard_publish_duplicates_total",
    "Publishes whose idempotency key was already used: answered with the first offset, not delivered",
    () => bus().duplicates,
  );
  collectedCounterBy(
    registry,
    "switchboard_resumes_total",
    "Subscribes with `since`: recovered, or the history_gap reason",
    "result",
    () => d.bridge.resumes,
  );
  collectedCounterBy(
    registry,
    "switchboard_connections_refused_total",
    "Connections the primary answered itself instead of handing them to a worker, by reason",
    "reason",
    () => d.balancer.refused,
  );
  collectedGauge(
    registry,
    "switchboard_balancer_held_connections",
    "Connections the primary holds: reading their request head or finishing its own answer",
    () => d.balancer.held,
  );
  collectedGauge(
    registry,
    "switchboard_open_connections",
    "Connections on this host as --max-connections counts them (held by the primary + open in workers)",
    () => d.balancer.openConnections(),
  );
  collectedCounter(
    registry,
    "switchboard_worker_hung_total",
    "Workers killed (SIGKILL) and replaced after leaving the heartbeat unanswered past --worker-hang-timeout",
    () => d.supervisor.hung,
  );
  collectedCounter(
    registry,
    "switchboard_worker_unresponsive_total",
    "Times a worker left the heartbeat unanswered past --worker-unresponsive",
    () => d.supervisor.unresponsive,
  );
  collectedCounterBy(
    registry,
    "switchboard_ipc_dropped_total",
    "Events not sent to an unresponsive worker because what waits for it passed its bound, by kind",
    "kind",
    () => {
      const adapter = d.supervisor.droppedMessages;
      return adapter > 0 ? { ...d.bridge.dropped, adapter } : d.bridge.dropped;
    },
  );
  collectedGauge(
    registry,
    "switchboard_ipc_pending_bytes",
    "IPC the primary keeps for its workers, waiting or unwritten (estimate, bytes)",
    () => d.bridge.totalPendingBytes(),
  );
  collectedHistogram(
    registry,
    "switchboard_fanout_latency_seconds",
    "Accepted by this host to written to the socket, per message delivered (each worker's write pass)",
    () => [{ labels: {}, snapshot: totals().fanout }],
  );
  collectedHistogram(registry, "switchboard_hook_call_duration_seconds", "Backend hook calls, by hook", () =>
    Object.entries(totals().hookLatency).map(([hook, snapshot]) => ({ labels: { hook }, snapshot })),
  );
  const perWorker = (name: string, help: string, value: (w: WorkerInfo) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ["worker"],
      registers: [registry],
      collect() {
        this.reset();
        for (const w of d.supervisor.workers) {
          const v = value(w);
          if (v !== null) this.set({ worker: String(w.slot) }, v);
        }
      },
    });
  perWorker(
    "switchboard_event_loop_lag_seconds",
    "Event-loop delay p99 over the worker's last report (about a second), by worker slot",
    (w) => (w.stats?.eventLoop ? w.stats.eventLoop.lagP99Ms / 1000 : null),
  );
  perWorker(
    "switchboard_event_loop_utilization",
    "Share of the last report interval the worker's event loop was busy (0-1), by worker slot",
    (w) => w.stats?.eventLoop?.utilization ?? null,
  );
  perWorker(
    "switchboard_worker_ipc_pending_bytes",
    "IPC the primary keeps for one worker, waiting or unwritten (estimate), by worker slot",
    (w) => d.bridge.pendingBytes(w.worker.id),
  );
  new Gauge({
    name: "switchboard_worker_connections",
    help: "Open client connections by worker slot and protocol",
    labelNames: ["worker", "protocol"],
    registers: [registry],
    collect() {
      this.reset();
      for (const w of d.supervisor.workers) {
        if (!w.stats) continue;
        this.set({ worker: String(w.slot), protocol: "raw" }, w.stats.rawConnections);
        this.set({ worker: String(w.slot), protocol: "socketio" }, w.stats.sioConnections);
      }
    },
  });
  collectedGauge(registry, "switchboard_crash_loop", "1 while a worker keeps dying (crash loop)", () =>
    d.supervisor.crashLooping() ? 1 : 0,
  );
  collectedGauge(registry, "switchboard_draining", "1 while the instance drains (SIGTERM, promote)", () =>
    d.phase() === "draining" ? 1 : 0,
  );
  collectedGauge(
    registry,
    "switchboard_drain_connections_left",
    "Client connections still open while draining (0 otherwise)",
    () => (d.phase() === "draining" ? sum(live(), (s) => s.rawConnections + s.sioConnections) : 0),
  );
  new Counter({
    name: "switchboard_hook_calls_total",
    help: "Backend hook calls by hook (connect, subscribe, publish, rpc, refresh) and outcome (ok, denied, timeout, failed, overloaded)",
    labelNames: ["hook", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of Object.entries(totals().hookCalls)) {
        const [hook = "", outcome = ""] = key.split(" ");
        this.inc({ hook, outcome }, n);
      }
    },
  });
  collectedGauge(
    registry,
    "switchboard_rss_bytes",
    "Resident memory of the primary and its workers",
    () => process.memoryUsage.rss() + sum(live(), (s) => s.rssBytes),
  );
  d.register?.(registry);
}

function sum<T>(items: T[], pick: (t: T) => number): number {
  return items.reduce((a, t) => a + pick(t), 0);
}
