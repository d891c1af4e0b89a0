import type { Namespaces } from "../namespaces.js";
import type { BusClient } from "./bus-client.js";
import type { ClientMember } from "./client-member.js";
import type { MembershipWatcher } from "./subscriptions.js";

/**
 * Tells the primary who is in each channel whose namespace has presence (the primary keeps the counts, on this host
 * or in Redis). Channels without presence cost nothing here.
 */
export function presenceReporter(
  namespaces: Namespaces,
  bus: Pick<BusClient, "report">,
): MembershipWatcher<ClientMember> {
  return {
    joined(member, channel) {
      if (!namespaces.of(channel).presence) return;
      const info = member.info === undefined ? null : JSON.stringify(member.info);
      bus.report(["pjoin", channel, member.id, member.user, info]);
    },
    left(member, channel) {
      if (namespaces.of(channel).presence) bus.report(["pleave", channel, member.id]);
    },
  };
}
