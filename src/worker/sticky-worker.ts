import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { setupWorker } from "@socket.io/sticky";
import type { Server as IoServer } from "socket.io";
import { SID_PARAM, sessionPrefix } from "../session-id.js";

const servedOther = Symbol("servedNonSocketIo");
/**
 * Receives connections from the primary with @socket.io/sticky's `setupWorker`, and mends its keep-alive rule.
 *
 * The package answers every request with `Connection: close`, so each request passes through the primary's
 * router again (socketio/socket.io-sticky#8). That also kills keep-alive for the publish API. Here only
 * Socket.IO requests close their connection. A kept-alive connection that first carried other requests and
 * then carries a Socket.IO request for a session this worker does not own (a browser or a proxy reusing
 * connections) gets a 307 to the same URL on a fresh connection, which the primary routes by session id.
 */
export function setupStickyWorker(server: Server, io: IoServer, workerId: number): void {
  // The session id names its worker, so the primary routes a session's next request without waiting for the
  // "sticky:connection" IPC message, which can arrive after the client's next request does.
  const generateId = io.engine.generateId.bind(io.engine);
  io.engine.generateId = async (req) => `${sessionPrefix(workerId)}${await generateId(req)}`;
  setupWorker(io);
  const stickyClose = server.listeners("request")[0] as (req: IncomingMessage, res: ServerResponse) => void;
  server.removeListener("request", stickyClose);

  const emit = server.emit.bind(server);
  server.emit = ((event: string, ...args: unknown[]) => {
    if (event !== "request") return emit(event, ...args);
    const [req, res] = args as [IncomingMessage, ServerResponse];
    const socket = req.socket as Socket & { [servedOther]?: boolean };
    if (!req.url?.startsWith("/socket.io/")) {
      socket[servedOther] = true;
      return emit(event, ...args);
    }
    res.setHeader("Connection", "close");
    const sid = SID_PARAM.exec(req.url)?.[1];
    if (
      socket[servedOther] &&
      sid !== undefined &&
      !(sid in (io.engine as unknown as { clients: Record<string, unknown> }).clients)
    ) {
      res.writeHead(307, { Location: req.url, "Content-Length": 0 });
      res.end();
      req.resume();
      return true;
    }
    return emit(event, ...args);
  }) as typeof server.emit;
}
