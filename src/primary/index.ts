import type { Worker } from "node:cluster";
import { readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import type { AddressInfo, Server as NetServer } from "node:net";
import { createServer } from "node:net";
import { setupPrimary as setupAdapterRelay } from "@socket.io/cluster-adapter";
import { Gauge } from "prom-client";
import { startBackendSide } from "../backend/backend-side.js";
import type { Bus } from "../bus/bus.js";
import { MemoryBus } from "../bus/memory-bus.js";
import type { RedisBus } from "../bus/redis/redis-bus.js";
import type { Config } from "../config.js";
import { IPC_TAG } from "../ipc.js";
import { createLogger } from "../log.js";
import { Namespaces } from "../namespaces.js";
import { answerProbe, type InstancePhase, type Readiness } from "../readiness.js";
import { AdminServer } from "./admin-server.js";
import { notifyReady, notifyStopping } from "./readiness-notifier.js";
import { StickyBalancer } from "./sticky-balancer.js";
import { Supervisor } from "./supervisor.js";
import { WorkerBridge } from "./worker-bridge.js";

/** History TTLs are enforced at least this often (more often when a namespace's TTL is shorter). */
const SWEEP_INTERVAL_MS = 30_000;

const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** How long a stopping primary waits for its last webhook events to be taken. */
const WEBHOOK_FLUSH_MS = 3000;

/** How often the primary checks whether the readiness its workers answer with has changed. */
const READINESS_PUSH_MS = 250;

/** The primary: forks and supervises workers, routes connections to them, sequences messages, serves admin. */
export async function runPrimary(config: Config): Promise<void> {
  const log = createLogger(config.logLevel, { role: "primary", instance: config.instance });
  let phase: InstancePhase = "starting";
  const namespaces = new Namespaces(config);

  const supervisor: Supervisor = new Supervisor({
    workers: config.workers,
    config,
    drainTimeoutMs: config.drainTimeoutMs,
    unresponsiveMs: config.workerUnresponsiveMs,
    hangTimeoutMs: config.workerHangTimeoutMs,
    log,
    onMessage(info, message) {
      if (message.kind === "up") bridge.apply(info, message.ops);
      else if (message.kind === "ready") {
        pushed = "";
        pushReadiness();
      } else if (message.kind === "topChannels") admin.feed.onWorkerMessage(message);
    },
    onExit(info) {
      bridge.removeWorker(info.worker.id);
      backend.workerExited(info.worker.id);
      admin.retire(info);
    },
    onLiveness(info, responsive) {
      const id = info.worker.id;
      bridge.hold(id, !responsive);
      if (!responsive) balancer.rehome(info.worker);
      else if (bridge.outOfStep(id)) void supervisor.replace(info, "events_dropped");
      pushReadiness();
    },
  });
  // A stats report includes the connections handed over so far: the balancer's recent count starts again.
  const bridge = new WorkerBridge(supervisor, (info) => balancer.resetRecent(info.worker.id));
  setupAdapterRelay();
  // Loaded only with --redis: the single-host path never imports ioredis.
  let redisBus: RedisBus | null = null;
  let bus: Bus;
  if (config.redis) {
    const { RedisBus } = await import("../bus/redis/redis-bus.js");
    redisBus = new RedisBus({ config, namespaces, sink: bridge, supervisor, log });
    bus = redisBus;
  } else {
    bus = new MemoryBus(bridge, {
      namespaces,
      maxHistoryBytes: config.historyMaxBytes,
      idempotencyWindowMs: config.idempotencyWindowMs,
    });
  }
  bridge.attach(bus);

  const { backend, clusterState, webhooks } = await startBackendSide({
    config,
    bus,
    bridge,
    namespaces,
    log,
  });

  const readiness = (): Readiness => {
    const { ready, retiring, starting, draining } = supervisor.countByState();
    return {
      instance: config.instance,
      phase,
      workers: { wanted: config.workers, live: ready, retiring, starting, draining },
      crashLoop: supervisor.crashLooping(),
      redis: redisBus ? redisBus.health() : null,
    };
  };
  // Workers answer /health and /ready on kept-alive connections with the primary's snapshot, sent when it changes.
  let pushed = "";
  const pushReadiness = () => {
    const snapshot = readiness();
    const text = JSON.stringify(snapshot);
    if (text === pushed) return;
    pushed = text;
    for (const w of supervisor.workers)
      supervisor.send(w, { tag: IPC_TAG, kind: "readiness", readiness: snapshot });
  };

  /** The ready worker with the fewest connections, counting those handed over since its last stats report. */
  const pickWorker = (): Worker | undefined => {
    let best: Worker | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const w of supervisor.workers) {
      // A worker that just died stays "ready" until its exit is seen: its channel is already closed.
      if (w.state !== "ready" || !w.worker.isConnected()) continue;
      const load =
        (w.stats?.rawConnections ?? 0) + (w.stats?.sioConnections ?? 0) + balancer.recentFor(w.worker.id);
      if (load < bestLoad) {
        best = w.worker;
        bestLoad = load;
      }
    }
    return best;
  };
  const publicServer = createServer();
  const balancer: StickyBalancer = new StickyBalancer(publicServer, {
    log,
    refusing: () => phase === "draining",
    pickWorker,
    responsive: (id) => supervisor.info(id)?.state !== "unresponsive",
    workerConnections: () => {
      let n = 0;
      for (const w of supervisor.workers)
        n += (w.stats?.rawConnections ?? 0) + (w.stats?.sioConnections ?? 0);
      return n;
    },
    probe: (path) => answerProbe(path, readiness()),
    limits: {
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      acceptRate: config.acceptRate,
      headerTimeoutMs: config.headerTimeoutMs,
    },
  });

  const status = () => ({
    instance: config.instance,
    phase,
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
    // The primary's own memory (its workers report theirs in their stats).
    memory: process.memoryUsage(),
    crashLoop: supervisor.crashLooping(),
    restarts: supervisor.restarts,
    // Workers killed for leaving the heartbeat unanswered past --worker-hang-timeout, and times one went silent.
    hung: supervisor.hung,
    unresponsive: supervisor.unresponsive,
    balancer: balancer.status(),
    // What the primary keeps for its workers (estimate) and what it dropped for unresponsive ones, by kind.
    ipc: {
      pendingBytes: bridge.totalPendingBytes(),
      dropped: { ...bridge.dropped, adapter: supervisor.droppedMessages },
    },
    // Channels with a subscriber here, and every channel state the bus holds (subscribed or with history).
    channels: bridge.interest.size,
    bus: bus.stats(),
    // Socket.IO sessions: each worker counts its own; the session id names its worker, so the primary keeps none.
    sessions: [...supervisor.workers].reduce((n, w) => n + (w.stats?.sioConnections ?? 0), 0),
    ...(redisBus ? { redis: redisBus.status() } : {}),
    ...(webhooks ? { webhooks: { queued: webhooks.queued, ...webhooks.counts } } : {}),
    workers: [...supervisor.workers].map((w) => ({
      id: w.worker.id,
      pid: w.worker.process.pid,
      slot: w.slot,
      state: w.state,
      startedAt: new Date(w.startedAt).toISOString(),
      silentMs: supervisor.silentMs(w),
      ipcPendingBytes: bridge.pendingBytes(w.worker.id),
      stats: w.stats,
    })),
  });
  const admin = new AdminServer({
    instance: config.instance,
    supervisor,
    bus,
    bridge,
    balancer,
    status,
    phase: () => phase,
    version: VERSION,
    password: config.adminPassword,
    redis: () =>
      redisBus ? { state: redisBus.health().state, pingSeconds: clusterState.roundTripSeconds() } : null,
    register(registry) {
      redisBus?.registerMetrics(registry);
      webhooks?.registerMetrics(registry);
      if (config.redis)
        new Gauge({
          name: "switchboard_redis_ping_seconds",
          help: "Round trip of a PING to Redis, every 2 s (absent while it does not answer)",
          registers: [registry],
          collect() {
            this.reset();
            const rtt = clusterState.roundTripSeconds();
            if (rtt !== null) this.set(rtt);
          },
        });
    },
  });

  await listen(publicServer, config.port, config.host);
  await listen(admin.server, config.adminPort, config.adminHost);
  const port = (publicServer.address() as AddressInfo).port;
  const adminPort = (admin.server.address() as AddressInfo).port;
  // Who may call the HTTP API is said once, here: a missing key is a choice an operator should see.
  const api = config.apiKey
    ? "API key required (Authorization: Bearer or X-API-Key)"
    : "no --api-key: direct loopback callers only, forwarded requests refused";
  log.info({ port, adminPort, workers: config.workers, node: process.version, api }, "primary started");

  const sweepEveryMs = Math.min(SWEEP_INTERVAL_MS, Math.max(1000, Math.round(namespaces.shortestTtlMs / 4)));
  const sweep = setInterval(() => bus.sweep(), sweepEveryMs);
  sweep.unref();

  let signals = 0;
  const shutdown = async (signal: string) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      supervisor.killAll();
      process.exit(1);
    }
    phase = "draining";
    pushReadiness();
    notifyStopping();
    log.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, "draining");
    const hardStop = setTimeout(() => {
      log.error("drain deadline passed: exiting");
      supervisor.killAll();
      process.exit(1);
    }, config.drainTimeoutMs + 5000);
    await supervisor.stop();
    // The drain's connection_closed and presence_leave events go out before the process does (bounded).
    await webhooks?.flush(WEBHOOK_FLUSH_MS);
    webhooks?.close();
    await clusterState.close();
    await bus.close();
    clearTimeout(hardStop);
    publicServer.close();
    admin.feed.close();
    admin.server.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    if (phase !== "running") return;
    log.info("SIGHUP: rolling reload");
    void supervisor.reload();
  });

  await bus.start();
  await clusterState.start();
  await supervisor.start();
  if (phase !== "starting") return;
  phase = "running";
  pushReadiness();
  setInterval(pushReadiness, READINESS_PUSH_MS).unref();
  log.info({ port, adminPort, workers: config.workers, host: config.host }, "ready");
  notifyReady(log);
}

function listen(server: NetServer | HttpServer, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host, backlog: 1024 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
