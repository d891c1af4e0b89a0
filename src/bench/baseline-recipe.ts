/**
 * The baseline recipe, as Socket.IO's documentation shows it ("Using Node.js cluster"): a primary that forks one
 * worker per core with @socket.io/sticky's setupPrimary and @socket.io/cluster-adapter's setupPrimary, and workers
 * with Socket.IO + createAdapter() + setupWorker(io). Channels are rooms; a tiny POST /api/publish route emits
 * `io.to(channel).emit("message", channel, data, {offset})`.
 *
 * Usage: node baseline-recipe.js --port 0 --workers N
 */
import cluster from "node:cluster";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { createAdapter, setupPrimary } from "@socket.io/cluster-adapter";
import { setupMaster, setupWorker } from "@socket.io/sticky";
import { Server } from "socket.io";
import { handlePublish } from "./publish-body.js";
import { argValue, logReady } from "./server-cli.js";

const WORKER_READY = "bench:worker-ready";

function runPrimary(): void {
  const port = Number(argValue(process.argv, "--port", "0"));
  const workers = Number(argValue(process.argv, "--workers", String(availableParallelism())));
  const httpServer = createServer();
  setupMaster(httpServer, { loadBalancingMethod: "least-connection" });
  setupPrimary();
  // @socket.io/sticky 2.x hands the first chunk over as a Buffer; it survives IPC only with "advanced".
  cluster.setupPrimary({ serialization: "advanced" });

  let readyWorkers = 0;
  let listening = false;
  const maybeReady = () => {
    if (listening && readyWorkers === workers) logReady((httpServer.address() as AddressInfo).port, workers);
  };
  cluster.on("message", (_worker, message: unknown) => {
    if ((message as { type?: unknown } | null)?.type === WORKER_READY) {
      readyWorkers++;
      maybeReady();
    }
  });
  httpServer.listen(port, () => {
    listening = true;
    maybeReady();
  });
  for (let i = 0; i < workers; i++) cluster.fork();

  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    httpServer.close();
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    const done = () => {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
    };
    cluster.on("exit", done);
    done();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}

function runWorker(): void {
  const offsets = new Map<string, number>();
  const httpServer = createServer((req, res) => {
    if (req.method === "POST" && req.url === "/api/publish") {
      handlePublish(req, res, ({ channel, data }) => {
        const offset = (offsets.get(channel) ?? 0) + 1;
        offsets.set(channel, offset);
        io.to(channel).emit("message", channel, data, { offset });
        return offset;
      });
      return;
    }
    if (req.url?.startsWith("/socket.io/")) return; // Socket.IO answers these itself
    // The health check a balancer makes (the recipe's docs leave it to the app: the simplest one).
    if (req.url === "/health") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer);
  io.adapter(createAdapter());
  setupWorker(io);

  io.on("connection", (socket) => {
    socket.on("subscribe", (channel: unknown, ack: unknown) => {
      if (typeof channel === "string") void socket.join(channel);
      if (typeof ack === "function") ack({ ok: true });
    });
    socket.on("unsubscribe", (channel: unknown, ack: unknown) => {
      if (typeof channel === "string") void socket.leave(channel);
      if (typeof ack === "function") ack({ ok: true });
    });
  });
  process.send?.({ type: WORKER_READY });
  process.on("SIGTERM", () => process.exit(0));
  process.on("disconnect", () => process.exit(0));
}

if (cluster.isPrimary) runPrimary();
else runWorker();
