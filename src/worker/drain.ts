import type { Server } from "node:http";
import type { Logger } from "../log.js";
import type { SioGateway } from "./sio-gateway.js";
import type { WsGateway } from "./ws-gateway.js";

export type DrainPlan = { windowMs: number; deadlineMs: number; reason: string };

/**
 * Closes every client of this worker, paced at random moments over the drain window so that they do not
 * all reconnect at once: raw clients get a `reconnect` frame with a jittered delay and close 1012; Socket.IO
 * clients get a transport close, on which socket.io-client reconnects by itself. Resolves when nobody is left
 * or at the deadline, whichever comes first.
 */
export function drainWorker(
  plan: DrainPlan,
  http: Server,
  ws: WsGateway,
  sio: SioGateway,
  log: Logger,
  random: () => number = Math.random,
): Promise<void> {
  const started = Date.now();
  const timers: NodeJS.Timeout[] = [];
  const maxDelayMs = Math.min(5000, Math.max(100, Math.round(plan.windowMs / 4)));
  for (const conn of ws.connections) {
    timers.push(
      setTimeout(
        () => ws.sendReconnect(conn, Math.round(random() * maxDelayMs), plan.reason),
        random() * plan.windowMs,
      ),
    );
  }
  for (const socket of sio.io.of("/").sockets.values()) {
    timers.push(setTimeout(() => socket.conn.close(), random() * plan.windowMs));
  }
  log.info(
    { raw: ws.connections.size, socketio: sio.connectionCount, windowMs: plan.windowMs, reason: plan.reason },
    "draining",
  );
  http.closeIdleConnections();
  return new Promise((resolve) => {
    const finish = () => {
      clearInterval(poll);
      clearTimeout(deadline);
      for (const t of timers) clearTimeout(t);
      log.info({ tookMs: Date.now() - started, left: ws.connections.size + sio.connectionCount }, "drained");
      resolve();
    };
    const poll = setInterval(() => {
      http.closeIdleConnections();
      if (ws.connections.size + sio.connectionCount === 0) finish();
    }, 50);
    const deadline = setTimeout(finish, Math.max(0, plan.deadlineMs - 500));
  });
}
