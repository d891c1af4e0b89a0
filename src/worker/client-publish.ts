import type { Published } from "../bus/bus.js";
import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";
import { type Namespaces, namespaceOf } from "../namespaces.js";
import { checkedChannel, encodedData } from "../protocol/client-message.js";
import { type Claims, grants } from "./auth.js";
import type { BusClient } from "./bus-client.js";

/** Client publish rule: the channel's namespace allows it (clientPublish) and the token grants the channel. */
function publishRefusal(namespaces: Namespaces, claims: Claims | null, channel: string): string | null {
  if (!namespaces.of(channel).clientPublish)
    return `clients may not publish to namespace "${namespaceOf(channel)}"`;
  if (!grants(claims, channel)) return `the token does not grant channel ${channel}`;
  return null;
}

export type ClientPublish = (
  claims: Claims | null,
  message: { channel: unknown; data: unknown; idempotencyKey?: string },
  done: (result: Published) => void,
  fail: (err: SwitchboardError) => void,
) => void;

/**
 * A client publish for both gateways: channel, publish policy and size checks, then the bus. A refusal calls
 * `fail` at once, so it is answered in frame order; the bus answers later.
 */
export function createClientPublish(
  config: Config,
  namespaces: Namespaces,
  bus: Pick<BusClient, "publish">,
): ClientPublish {
  // The checks throw SwitchboardError only, and the bus rejects with nothing else.
  return (claims, { channel, data, idempotencyKey }, done, fail) => {
    let message: [string, string, string | null];
    try {
      const name = checkedChannel(channel, config.maxChannelLength);
      const refused = publishRefusal(namespaces, claims, name);
      if (refused) return fail(new SwitchboardError("forbidden", refused));
      message = [name, encodedData(data, config.maxPayloadBytes), idempotencyKey ?? null];
    } catch (err) {
      return fail(err as SwitchboardError);
    }
    bus.publish([message]).then(([result]) => done(result as Published), fail);
  };
}
