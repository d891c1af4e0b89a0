import type { PresenceEntry } from "../ipc.js";
import { encodeTextFrame } from "../protocol/server-frames.js";
import type { ChannelRegistry } from "./channel-registry.js";
import type { ClientMember } from "./client-member.js";
import type { RawConnection } from "./raw-connection.js";
import { type SioMember, sioEvent } from "./sio-member.js";

/**
 * A user joined or left a channel with joinLeave: its subscribers here get raw `{"type":"join"|"leave","channel",
 * "info":{client,user,info}}` or the Socket.IO event `join` / `leave` (channel, info), in order with its messages.
 */
export function deliverPresenceNotice(
  registry: ChannelRegistry<ClientMember>,
  maxBufferedBytes: number,
  channel: string,
  kind: "join" | "leave",
  entry: PresenceEntry,
): void {
  const info = JSON.stringify({ client: entry.client, user: entry.user, info: entry.info ?? null });
  const channelJson = JSON.stringify(channel);
  const raw = registry.rawMembers(channel);
  if (raw && raw.size > 0) {
    const frame = encodeTextFrame(`{"type":"${kind}","channel":${channelJson},"info":${info}}`);
    for (const m of raw) (m as RawConnection).sendLive(channel, frame, maxBufferedBytes);
  }
  const sio = registry.sioMembers(channel);
  if (sio && sio.size > 0) {
    const event = sioEvent(`"${kind}",${channelJson},${info}`);
    for (const m of sio) (m as SioMember).sendLive(channel, event);
  }
}
