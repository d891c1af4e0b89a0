import { createServer, type Server } from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import type { Bus } from "../bus/bus.js";
import { errorReply } from "../errors.js";
import type { WorkerStats } from "../ipc.js";
import { collectedCounter, collectedCounterBy, collectedGauge } from "./collected-metrics.js";
import type { StickyBalancer } from "./sticky-balancer.js";
import type { Supervisor, WorkerInfo } from "./supervisor.js";
import type { WorkerBridge } from "./worker-bridge.js";

export type AdminDeps = {
  instance: string;
  supervisor: Supervisor;
  bus: Bus;
  bridge: WorkerBridge;
  balancer: StickyBalancer;
  status(): Record<string, unknown>;
  /** Adds metrics of optional parts (the Redis relay). */
  register?(registry: Registry): void;
};

type Totals = {
  delivered: number;
  socketWrites: number;
  slowConsumers: number;
  errors: Record<string, number>;
  hookCalls: Record<string, number>;
};

/**
 * The admin port (loopback by default): Prometheus /metrics for the whole host (workers' counters summed in
 * the primary, so a scrape never sees one worker only) and /status as JSON.
 */
export class AdminServer {
  readonly server: Server;
  readonly #d: AdminDeps;
  /** Counters of workers that exited, so totals never go backwards. */
  readonly #retired: Totals = { delivered: 0, socketWrites: 0, slowConsumers: 0, errors: {}, hookCalls: {} };

  constructor(d: AdminDeps) {
    this.#d = d;
    const registry = new Registry();
    registry.setDefaultLabels({ instance: d.instance });
    const totals = () => this.totals();
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

    this.server = createServer((req, res) => {
      const path = req.url?.split("?", 1)[0];
      if (req.method === "GET" && path === "/metrics") {
        registry.metrics().then((text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        });
        return;
      }
      if (req.method === "GET" && (path === "/status" || path === "/")) {
        const body = JSON.stringify({ ...d.status(), totals: this.totals() }, null, 2);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(body);
        return;
      }
      const { status, body } = errorReply("not_found", "admin routes: /metrics, /status");
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  }

  /** Adds an exited worker's last counters to the retired totals. */
  retire(info: WorkerInfo): void {
    if (!info.stats) return;
    addTotals(this.#retired, info.stats);
  }

  totals(): Totals {
    const t: Totals = {
      delivered: this.#retired.delivered,
      socketWrites: this.#retired.socketWrites,
      slowConsumers: this.#retired.slowConsumers,
      errors: { ...this.#retired.errors },
      hookCalls: { ...this.#retired.hookCalls },
    };
    for (const w of this.#d.supervisor.workers) if (w.stats) addTotals(t, w.stats);
    return t;
  }
}

function addTotals(t: Totals, s: WorkerStats): void {
  t.delivered += s.delivered;
  t.socketWrites += s.socketWrites;
  t.slowConsumers += s.slowConsumers;
  for (const [code, n] of Object.entries(s.errors)) t.errors[code] = (t.errors[code] ?? 0) + n;
  for (const [key, n] of Object.entries(s.hookCalls ?? {})) t.hookCalls[key] = (t.hookCalls[key] ?? 0) + n;
}

function sum<T>(items: T[], pick: (t: T) => number): number {
  return items.reduce((a, t) => a + pick(t), 0);
}
