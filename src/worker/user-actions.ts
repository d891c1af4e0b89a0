import type { UserAction } from "../ipc.js";
import { encodeTextFrame } from "../protocol/server-frames.js";
import type { ClientMember } from "./client-member.js";
import type { ClientsByUser } from "./clients-by-user.js";
import type { RawConnection } from "./raw-connection.js";
import { channelRoom } from "./sio-gateway.js";
import type { SioMember } from "./sio-member.js";
import type { Subscriptions } from "./subscriptions.js";

export type UserActionDeps = {
  clients: ClientsByUser;
  subscriptions: Subscriptions<ClientMember>;
  maxBufferedBytes: number;
};

/**
 * What the server API does to a user's connections on this worker (every worker of every host gets the action):
 * disconnect them (a `disconnect` frame / event first, so the client knows whether to come back), take them out of
 * a channel (an `unsubscribed` frame / event), or give them a new expiry. Returns how many connections it touched.
 */
export function applyUserAction(action: UserAction, d: UserActionDeps): number {
  const members = d.clients.of(action.user);
  let touched = 0;
  for (const member of members) {
    if (member.closed) continue;
    switch (action.kind) {
      case "disconnect":
        disconnect(member, action.code, action.reason, action.reconnect, d.maxBufferedBytes);
        break;
      case "unsubscribe":
        if (!member.channels.has(action.channel)) continue;
        d.subscriptions.unsubscribe(member, action.channel);
        tell(member, d.maxBufferedBytes, "unsubscribed", { channel: action.channel, reason: "server" });
        if (member.protocol === "sio") {
          const sio = member as SioMember;
          sio.held?.delete(action.channel);
          sio.socket.leave(channelRoom(action.channel));
        }
        break;
      case "refresh":
        member.expireAt = action.expireAt;
        if (member.claims?.exp !== undefined) member.claims = { ...member.claims, exp: action.expireAt };
        break;
    }
    touched += 1;
  }
  return touched;
}

function disconnect(
  member: ClientMember,
  code: number,
  reason: string,
  reconnect: boolean,
  max: number,
): void {
  member.closeReason = "disconnected";
  // Socket.IO reserves the event name "disconnect" (its own event on the client).
  tell(member, max, member.protocol === "raw" ? "disconnect" : "server_disconnect", {
    code,
    reason,
    reconnect,
  });
  if (member.protocol === "raw") {
    const conn = member as RawConnection;
    conn.flush();
    conn.ws.close(code, reason.slice(0, 120));
    return;
  }
  const socket = (member as SioMember).socket;
  // A transport close makes socket.io-client reconnect by itself; a server disconnect makes it stay away.
  if (reconnect) socket.conn.close();
  else socket.disconnect(true);
}

/** A server notice: raw `{"type":<type>,…fields}`, Socket.IO event `<type>` with the fields. */
function tell(member: ClientMember, max: number, type: string, fields: Record<string, unknown>): void {
  if (member.protocol === "raw")
    (member as RawConnection).send(encodeTextFrame(JSON.stringify({ type, ...fields })), max);
  else (member as SioMember).socket.emit(type, fields);
}
