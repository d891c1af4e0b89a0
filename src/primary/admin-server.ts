import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { Counter, Gauge, Registry } from "prom-client";
import type { Bus } from "../bus/bus.js";
import { errorReply } from "../errors.js";
import type { WorkerStats } from "../ipc.js";
import { addSnapshot, emptySnapshot, type HistogramSnapshot } from "../metrics/latency-histogram.js";
import { AdminFeed } from "./admin-feed.js";
import { ADMIN_PAGE } from "./admin-page.js";
import {
  collectedCounter,
  collectedCounterBy,
  collectedGauge,
  collectedHistogram,
} from "./collected-metrics.js";
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
  /** The instance's phase: starting, running, draining. */
  phase(): string;
  version: string;
  /** --admin-password: every admin route asks for it (null: loopback-only admin port, no password). */
  password: string | null;
  /** The Redis link's state and round trip, with --redis. */
  redis(): { state: string; pingSeconds: number | null } | null;
  /** Adds metrics of optional parts (the Redis relay). */
  register?(registry: Registry): void;
};

type Totals = {
  delivered: number;
  socketWrites: number;
  slowConsumers: number;
  drained: number;
  errors: Record<string, number>;
  hookCalls: Record<string, number>;
  fanout: HistogramSnapshot;
  hookLatency: Record<string, HistogramSnapshot>;
};

function emptyTotals(): Totals {
  return {
    delivered: 0,
    socketWrites: 0,
    slowConsumers: 0,
    drained: 0,
    errors: {},
    hookCalls: {},
    fanout: emptySnapshot(),
    hookLatency: {},
  };
}

/**
 * The admin port (loopback by default): Prometheus /metrics for the whole host (workers' counters summed in
 * the primary, so a scrape never sees one worker only) and /status as JSON.
 */
export class AdminServer {
  readonly server: Server;
  readonly feed: AdminFeed;
  readonly #d: AdminDeps;
  /** Counters of workers that exited, so totals never go backwards. */
  readonly #retired: Totals = emptyTotals();

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
    collectedHistogram(
      registry,
      "switchboard_fanout_latency_seconds",
      "Accepted by this host to written to the socket, per message delivered (each worker's write pass)",
      () => [{ labels: {}, snapshot: totals().fanout }],
    );
    collectedHistogram(
      registry,
      "switchboard_hook_call_duration_seconds",
      "Backend hook calls, by hook",
      () => Object.entries(totals().hookLatency).map(([hook, snapshot]) => ({ labels: { hook }, snapshot })),
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

    this.feed = new AdminFeed({
      instance: d.instance,
      version: d.version,
      supervisor: d.supervisor,
      bridge: d.bridge,
      phase: d.phase,
      totals,
      redis: d.redis,
    });
    d.bridge.onChannelMessage = (channel) => this.feed.published(channel);
    this.server = createServer((req, res) => {
      if (!this.#authorized(req)) {
        res.writeHead(401, {
          "www-authenticate": 'Basic realm="switchboard admin"',
          "content-type": "application/json",
        });
        res.end(JSON.stringify(errorReply("unauthorized", "the admin port needs --admin-password").body));
        return;
      }
      const url = new URL(`http://x${req.url?.startsWith("/") ? req.url : "/"}`);
      const route = `${req.method} ${url.pathname}`;
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify(body, null, 2));
      };
      switch (route) {
        case "GET /metrics":
          registry.metrics().then((text) => {
            res.writeHead(200, { "content-type": registry.contentType });
            res.end(text);
          });
          return;
        case "GET /status": {
          const latest = this.feed.latest;
          return json(200, {
            ...d.status(),
            totals: this.totals(),
            ...(latest ? { fanout: latest.fanout } : {}),
          });
        }
        case "GET /":
          res.writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            // Self-contained: nothing may load from anywhere but this page.
            "content-security-policy":
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            "cache-control": "no-store",
          });
          res.end(ADMIN_PAGE);
          return;
        case "GET /feed":
          return this.feed.serve(req, res);
        case "GET /channels": {
          const text = (url.searchParams.get("q") ?? "").slice(0, 256);
          const limit = Math.min(100, Math.max(1, Number(url.searchParams.get("limit")) || 20));
          this.feed.search(text, limit).then((rows) => json(200, rows));
          return;
        }
        default: {
          const { status, body } = errorReply(
            "not_found",
            "admin routes: /, /feed, /channels, /metrics, /status",
          );
          return json(status, body);
        }
      }
    });
  }

  /** With --admin-password: HTTP Basic (any user name) or `Authorization: Bearer <password>`. */
  #authorized(req: IncomingMessage): boolean {
    const password = this.#d.password;
    if (!password) return true;
    const header = req.headers.authorization ?? "";
    let given = "";
    if (header.startsWith("Bearer ")) given = header.slice(7);
    else if (header.startsWith("Basic ")) {
      const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
      given = decoded.slice(decoded.indexOf(":") + 1);
    }
    const a = Buffer.from(given);
    const b = Buffer.from(password);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Adds an exited worker's last counters to the retired totals. */
  retire(info: WorkerInfo): void {
    if (!info.stats) return;
    addTotals(this.#retired, info.stats);
  }

  totals(): Totals {
    const t = emptyTotals();
    addTotals(t, this.#retired);
    for (const w of this.#d.supervisor.workers) if (w.stats) addTotals(t, w.stats);
    return t;
  }
}

function addTotals(t: Totals, s: Totals | WorkerStats): void {
  t.delivered += s.delivered;
  t.socketWrites += s.socketWrites;
  t.slowConsumers += s.slowConsumers;
  t.drained += s.drained ?? 0;
  for (const [code, n] of Object.entries(s.errors)) t.errors[code] = (t.errors[code] ?? 0) + n;
  for (const [key, n] of Object.entries(s.hookCalls)) t.hookCalls[key] = (t.hookCalls[key] ?? 0) + n;
  addSnapshot(t.fanout, s.fanout);
  for (const [hook, h] of Object.entries(s.hookLatency)) {
    t.hookLatency[hook] ??= emptySnapshot();
    addSnapshot(t.hookLatency[hook], h);
  }
}

function sum<T>(items: T[], pick: (t: T) => number): number {
  return items.reduce((a, t) => a + pick(t), 0);
}
