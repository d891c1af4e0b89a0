import type { Published } from "../bus/bus.js";
import type { Config } from "../config.js";
import { SwitchboardError } from "../errors.js";
import type { BackendHooks } from "../hooks/backend-hooks.js";
import { type Namespaces, namespaceOf } from "../namespaces.js";
import { checkedChannel, encodedData } from "../protocol/client-message.js";
import { type Claims, grants } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ClientMember } from "./client-member.js";

/** Client publish rule: the channel's namespace allows it (clientPublish) and the token grants the channel. */
function publishRefusal(namespaces: Namespaces, claims: Claims | null, channel: string): string | null {
  if (!namespaces.of(channel).clientPublish)
    return `clients may not publish to namespace "${namespaceOf(channel)}"`;
  if (!grants(claims, channel)) return `the token does not grant channel ${channel}`;
  return null;
}

export type ClientPublish = (
  member: ClientMember,
  message: { channel: unknown; data: unknown; idempotencyKey?: string },
  done: (result: Published) => void,
  fail: (err: SwitchboardError) => void,
) => void;

/**
 * A client publish for both gateways: channel, publish policy and size checks, the publish hook where it is
 * configured (it may refuse or replace the data, which is checked again), then the bus. A refusal of the checks
 * calls `fail` at once, so it is answered in frame order; the hook and the bus answer later.
 */
export function createClientPublish(
  config: Config,
  namespaces: Namespaces,
  bus: Pick<BusClient, "publish">,
  hooks: BackendHooks,
): ClientPublish {
  // The checks throw SwitchboardError only, and the hook and the bus reject with nothing else.
  return (member, { channel, data, idempotencyKey }, done, fail) => {
    let name: string;
    let dataJson: string;
    try {
      name = checkedChannel(channel, config.maxChannelLength);
      const refused = publishRefusal(namespaces, member.claims, name);
      if (refused) return fail(new SwitchboardError("forbidden", refused));
      dataJson = encodedData(data, config.maxPayloadBytes);
    } catch (err) {
      return fail(err as SwitchboardError);
    }
    const send = (json: string) =>
      bus.publish([[name, json, idempotencyKey ?? null]]).then(([result]) => done(result as Published), fail);
    if (!hooks.publishHook || !namespaces.of(name).publishHook) return void send(dataJson);
    hooks.publish(member, name, data, dataJson).then(send, fail);
  };
}
