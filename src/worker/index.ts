import { createServer } from "node:http";
import type { Config } from "../config.js";
import { BackendHooks } from "../hooks/backend-hooks.js";
import { IPC_TAG } from "../ipc.js";
import { createLogger } from "../log.js";
import { Namespaces } from "../namespaces.js";
import type { Readiness } from "../readiness.js";
import { createTokenVerifier } from "./auth.js";
import { BusClient } from "./bus-client.js";
import { ChannelRegistry } from "./channel-registry.js";
import type { ClientMember } from "./client-member.js";
import { ClientsByUser } from "./clients-by-user.js";
import { drainWorker } from "./drain.js";
import { FanoutTimer } from "./fanout-timer.js";
import { FrameFlusher } from "./frame-flusher.js";
import { createHttpApi } from "./http-api.js";
import { LoopMonitor } from "./loop-monitor.js";
import { presenceReporter } from "./presence-reporter.js";
import { SioGateway } from "./sio-gateway.js";
import { setupStickyWorker } from "./sticky-worker.js";
import { Subscriptions } from "./subscriptions.js";
import { applyUserAction } from "./user-actions.js";
import { WorkerCounters } from "./worker-counters.js";
import { WsGateway } from "./ws-gateway.js";

const STATS_INTERVAL_MS = 1000;

/** One worker: HTTP + /ws + Socket.IO on connections handed over by the primary, joined to the in-host bus. */
export function runWorker(config: Config, workerId: number): void {
  const log = createLogger(config.logLevel, { role: "worker", worker: workerId, instance: config.instance });
  let accepting = true;
  // The primary's /health and /ready answer, for requests on kept-alive connections (it sends it on every change).
  let readiness: Readiness = {
    instance: config.instance,
    phase: "starting",
    workers: { wanted: config.workers, live: 0, retiring: 0, starting: 1, draining: 0 },
    crashLoop: false,
    redis: null,
  };
  const bus = new BusClient();
  const registry = new ChannelRegistry<ClientMember>();
  const namespaces = new Namespaces(config);
  const subscriptions = new Subscriptions(
    bus,
    registry,
    config.maxSubscriptions,
    presenceReporter(namespaces, bus),
  );
  const counters = new WorkerCounters();
  const verifyToken = createTokenVerifier(config);
  // Socket.IO wraps the listeners present when it attaches and hands them whatever is not /socket.io/,
  // so the API handler must be registered first; it is bound once the gateways exist.
  let api: ReturnType<typeof createHttpApi> | undefined;
  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => api?.(req, res));
  const flusher = new FrameFlusher();
  // connection_closed webhooks: only reported when a --webhook takes them.
  const clients = new ClientsByUser(
    config.webhook ? (member, reason) => bus.report(["closed", member.id, member.user, reason]) : null,
  );
  const hooks = new BackendHooks(config, counters, log);
  const common = {
    config,
    namespaces,
    bus,
    registry,
    subscriptions,
    verifyToken,
    counters,
    clients,
    hooks,
    flusher,
    log,
  };
  const ws = new WsGateway(server, { ...common, accepting: () => accepting });
  const sio = new SioGateway(server, common);
  api = createHttpApi({
    config,
    bus,
    io: sio.io,
    counters,
    log,
    readiness: () => readiness,
    rawCount: (channel) => registry.rawMembers(channel)?.size ?? 0,
    subscriberCount: (channel) =>
      (registry.rawMembers(channel)?.size ?? 0) + (registry.sioMembers(channel)?.size ?? 0),
    presenceOn: (channel) => namespaces.of(channel).presence,
  });
  setupStickyWorker(server, sio.io, workerId);

  const fanout = new FanoutTimer(counters.fanout);
  flusher.onPassEnd = () => fanout.written();
  const loop = new LoopMonitor();
  bus.onDelivery(([, channel, offset, dataJson, acceptedAt]) => {
    registry.delivered(channel, offset);
    const n = ws.deliver(channel, offset, dataJson) + sio.deliver(channel, offset, dataJson);
    counters.delivered += n;
    if (n > 0) fanout.queued(acceptedAt);
  });
  bus.onLost((channel, offset, epoch) => {
    registry.moved(channel, { offset, epoch });
    ws.lost(channel, offset, epoch);
    sio.lost(channel, offset, epoch);
  });
  // Join / leave notices of joinLeave channels, encoded once for both protocols.
  bus.onPresence((channel, kind, { client, user, info }) => {
    const infoJson = JSON.stringify({ client, user, info: info ?? null });
    ws.presence(channel, kind, infoJson);
    sio.presence(channel, kind, infoJson);
  });
  bus.onUserAction((action) => {
    try {
      applyUserAction(action, { clients, subscriptions, maxBufferedBytes: config.maxBufferedBytes });
    } catch (err) {
      log.error({ err, action: action.kind }, "server API action failed on this worker");
    }
  });
  bus.onControl((m) => {
    // The primary's liveness heartbeat: answered at once, so a worker whose event loop stops is noticed.
    if (m.kind === "ping") bus.send({ tag: IPC_TAG, kind: "pong", seq: m.seq });
    else if (m.kind === "topChannels")
      bus.send({ tag: IPC_TAG, kind: "topChannels", qid: m.qid, channels: registry.top(m.text, m.limit) });
    else if (m.kind === "readiness") readiness = m.readiness;
    else if (m.kind === "drain") {
      accepting = false;
      void drainWorker(m, server, ws, sio, log, counters).then(() => {
        ws.close();
        sio.close();
        flusher.close();
        server.closeAllConnections();
        setTimeout(() => process.exit(0), 50);
      });
    }
  });

  setInterval(() => {
    bus.reportStats({
      rawConnections: ws.connections.size,
      sioConnections: sio.connectionCount,
      delivered: counters.delivered,
      socketWrites: flusher.writes,
      slowConsumers: counters.slowConsumers,
      drained: counters.drained,
      errors: { ...counters.errors },
      hookCalls: { ...counters.hookCalls },
      hookLatency: counters.hookLatency(),
      fanout: counters.fanout.snapshot(),
      eventLoop: loop.sample(),
      rssBytes: process.memoryUsage.rss(),
      at: Date.now(),
    });
  }, STATS_INTERVAL_MS).unref();

  // Signals are the primary's business (a terminal's Ctrl-C reaches the whole process group): it drains us.
  process.on("SIGINT", () => {});
  process.on("SIGTERM", () => {});
  // The primary going away (killed with SIGKILL) leaves nobody to route to us: stop too.
  process.on("disconnect", () => process.exit(0));
  bus.send({ tag: IPC_TAG, kind: "ready" });
  log.info({ slot: process.env.SWITCHBOARD_WORKER_SLOT }, "worker started");
}
