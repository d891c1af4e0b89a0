import type { Bus } from "../bus/bus.js";
import type { Config } from "../config.js";
import type { Logger } from "../log.js";
import type { Namespaces } from "../namespaces.js";
import type { WorkerBridge } from "../primary/worker-bridge.js";
import { BackendService } from "./backend-service.js";
import type { ClusterState } from "./cluster-state.js";
import { MemoryClusterState } from "./memory-cluster-state.js";
import { WebhookSender } from "./webhooks.js";

export type BackendSide = {
  backend: BackendService;
  clusterState: ClusterState;
  webhooks: WebhookSender | null;
};

/**
 * The primary's backend side, wired to its bridge: webhooks (with --webhook), the state hosts share (memory, or
 * Redis with --redis; ioredis is loaded only then) and the service that answers the workers' backend ops.
 */
export async function startBackendSide(o: {
  config: Config;
  bus: Bus;
  bridge: WorkerBridge;
  namespaces: Namespaces;
  log: Logger;
}): Promise<BackendSide> {
  const { config, bridge, log } = o;
  const webhooks = config.webhook
    ? new WebhookSender({
        url: config.webhook,
        secret: config.hookSecret,
        queueMax: config.webhookQueue,
        retryMs: config.webhookRetryMs,
        timeoutMs: config.hookTimeoutMs,
        instance: config.instance,
        log: log.child({ module: "webhooks" }),
      })
    : null;
  let clusterState: ClusterState;
  if (config.redis) {
    const { RedisClusterState } = await import("./redis-cluster-state.js");
    const { parseRedisTarget } = await import("../bus/redis/redis-options.js");
    clusterState = new RedisClusterState({
      target: parseRedisTarget(config.redis, config.redisCluster),
      prefix: config.redisPrefix,
      ttlMs: config.presenceTtlMs,
      log: log.child({ module: "cluster-state" }),
      local: () => ({ channels: bridge.interest.names(), presence: backend.localPresence() }),
    });
  } else clusterState = new MemoryClusterState();
  const backend: BackendService = new BackendService({
    state: clusterState,
    webhooks,
    bus: o.bus,
    namespaces: o.namespaces,
    log,
    send: (workerId, event) => bridge.sendTo(workerId, event),
    sendToInterested: (channel, event) => bridge.sendToInterested(channel, event),
    sendToAll: (event) => bridge.sendToAll(event),
  });
  bridge.onBackendOp = (workerId, op) => backend.apply(workerId, op);
  bridge.onInterest = (channel, interested) => backend.interest(channel, interested);
  return { backend, clusterState, webhooks };
}
