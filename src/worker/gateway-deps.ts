import { type Config, namespaceOf } from "../config.js";
import type { Logger } from "../log.js";
import { grants, type TokenVerifier } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ChannelRegistry, Member } from "./channel-registry.js";
import type { Claims } from "./raw-connection.js";
import type { Subscriptions } from "./subscriptions.js";
import type { WorkerCounters } from "./worker-counters.js";

/** What both client gateways (/ws and Socket.IO) are built from. */
export type GatewayDeps = {
  config: Config;
  bus: BusClient;
  registry: ChannelRegistry<Member>;
  subscriptions: Subscriptions<Member>;
  verifyToken: TokenVerifier;
  counters: WorkerCounters;
  log: Logger;
};

/** Client publish rule: the channel's namespace is in --publish-namespaces and the token grants the channel. */
export function createPublishPolicy(
  config: Config,
): (claims: Claims | null, channel: string) => string | null {
  const allowed = new Set(config.publishNamespaces.split(",").filter(Boolean));
  return (claims, channel) => {
    if (!allowed.has(namespaceOf(channel)))
      return `clients may not publish to namespace "${namespaceOf(channel)}"`;
    if (!grants(claims, channel)) return `the token does not grant channel ${channel}`;
    return null;
  };
}
