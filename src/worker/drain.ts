import type { Server } from "node:http";
import type { Logger } from "../log.js";
import type { SioGateway } from "./sio-gateway.js";
import type { WorkerCounters } from "./worker-counters.js";
import type { WsGateway } from "./ws-gateway.js";

/** About 500 closes per second per worker: a few clients go at once, 10,000 use the whole window. */
const PACE_MS_PER_CLIENT = 2;
const FORCE_AFTER_MS = 2000;

export type DrainPlan = { windowMs: number; deadlineMs: number; reason: string };

/**
 * Closes every client of this worker, paced at random moments over (at most) the drain window so that they do
 * not all reconnect at once: raw clients get a `reconnect` frame with a jittered delay and close 1012; Socket.IO
 * clients get a transport close, on which socket.io-client reconnects by itself. Resolves when nobody is left
 * or at the deadline, whichever comes first.
 */
export function drainWorker(
  plan: DrainPlan,
  http: Server,
  ws: WsGateway,
  sio: SioGateway,
  log: Logger,
  counters: Pick<WorkerCounters, "drained">,
  random: () => number = Math.random,
): Promise<void> {
  const started = Date.now();
  const timers: NodeJS.Timeout[] = [];
  const connected = () => ws.connections.size + sio.connectionCount;
  const clients = connected();
  const windowMs = Math.min(plan.windowMs, Math.max(200, clients * PACE_MS_PER_CLIENT));
  const maxDelayMs = Math.min(5000, Math.max(100, Math.round(windowMs / 4)));
  for (const conn of ws.connections) {
    const delayMs = Math.round(random() * maxDelayMs);
    timers.push(
      setTimeout(() => {
        ws.sendReconnect(conn, delayMs, plan.reason);
        counters.drained += 1;
      }, random() * windowMs),
    );
  }
  for (const socket of sio.io.of("/").sockets.values()) {
    timers.push(
      setTimeout(() => {
        sio.drainSocket(socket);
        counters.drained += 1;
      }, random() * windowMs),
    );
  }
  // A client that vanished never completes a close handshake (a long-polling one is waited for 30 s):
  // whoever is left once the window and a grace period have passed is cut off.
  timers.push(
    setTimeout(() => {
      for (const conn of ws.connections) conn.ws.terminate();
      // A long-polling transport already "closing" ignores another close; disconnecting the socket frees it.
      for (const socket of sio.io.of("/").sockets.values()) socket.disconnect(true);
    }, windowMs + FORCE_AFTER_MS),
  );
  log.info(
    { raw: ws.connections.size, socketio: sio.connectionCount, windowMs, reason: plan.reason },
    "draining",
  );
  http.closeIdleConnections();
  return new Promise((resolve) => {
    const finish = () => {
      clearInterval(poll);
      clearTimeout(deadline);
      for (const t of timers) clearTimeout(t);
      log.info({ tookMs: Date.now() - started, left: connected() }, "drained");
      resolve();
    };
    const poll = setInterval(() => {
      http.closeIdleConnections();
      if (connected() === 0) finish();
    }, 50);
    const deadline = setTimeout(finish, Math.max(0, plan.deadlineMs - 500));
  });
}
