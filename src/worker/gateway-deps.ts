import { type Config, namespaceOf } from "../config.js";
import { SwitchboardError } from "../errors.js";
import type { Logger } from "../log.js";
import { checkedChannel, encodedData } from "../protocol/client-message.js";
import { type Claims, grants, type TokenVerifier } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ChannelRegistry } from "./channel-registry.js";
import type { ClientMember } from "./client-member.js";
import type { Subscriptions } from "./subscriptions.js";
import type { WorkerCounters } from "./worker-counters.js";

/** What both client gateways (/ws and Socket.IO) are built from. */
export type GatewayDeps = {
  config: Config;
  bus: BusClient;
  registry: ChannelRegistry<ClientMember>;
  subscriptions: Subscriptions<ClientMember>;
  verifyToken: TokenVerifier;
  counters: WorkerCounters;
  log: Logger;
};

/** Client publish rule: the channel's namespace is in --publish-namespaces and the token grants the channel. */
function createPublishPolicy(config: Config): (claims: Claims | null, channel: string) => string | null {
  const allowed = new Set(config.publishNamespaces.split(",").filter(Boolean));
  return (claims, channel) => {
    if (!allowed.has(namespaceOf(channel)))
      return `clients may not publish to namespace "${namespaceOf(channel)}"`;
    if (!grants(claims, channel)) return `the token does not grant channel ${channel}`;
    return null;
  };
}

export type ClientPublish = (
  claims: Claims | null,
  channel: unknown,
  data: unknown,
  done: (offset: number) => void,
  fail: (err: SwitchboardError) => void,
) => void;

/**
 * A client publish for both gateways: channel, publish policy and size checks, then the bus. A refusal calls
 * `fail` at once, so it is answered in frame order; the bus answers later.
 */
export function createClientPublish(config: Config, bus: Pick<BusClient, "publish">): ClientPublish {
  const refusal = createPublishPolicy(config);
  // The checks throw SwitchboardError only, and the bus rejects with nothing else.
  return (claims, channel, data, done, fail) => {
    let message: [string, string];
    try {
      const name = checkedChannel(channel, config.maxChannelLength);
      const refused = refusal(claims, name);
      if (refused) return fail(new SwitchboardError("forbidden", refused));
      message = [name, encodedData(data, config.maxPayloadBytes)];
    } catch (err) {
      return fail(err as SwitchboardError);
    }
    bus.publish([message]).then(([offset]) => done(offset as number), fail);
  };
}
