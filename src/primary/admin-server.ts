import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { Registry } from "prom-client";
import type { Bus } from "../bus/bus.js";
import { errorReply } from "../errors.js";
import type { WorkerStats } from "../ipc.js";
import { addSnapshot, emptySnapshot, type HistogramSnapshot } from "../metrics/latency-histogram.js";
import { AdminFeed } from "./admin-feed.js";
import { ADMIN_PAGE } from "./admin-page.js";
import { registerHostMetrics } from "./host-metrics.js";
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

export type Totals = {
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
    registerHostMetrics(registry, d, totals);

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
            totals: { published: d.bridge.published, ...this.totals() },
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

function _sum<T>(items: T[], pick: (t: T) => number): number {
  return items.reduce((a, t) => a + pick(t), 0);
}
