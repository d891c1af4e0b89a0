/**
 * What the connect and subscribe hooks add to a client's latency: the built server (dist/cli.js, one worker) with
 * and without --connect-hook / --subscribe-hook against a local backend that answers at once; raw connections
 * opened a few at a time, each timed from upgrade request to open and from subscribe frame to ack.
 *
 *   npm run build && node dist/bench/hook-latency.js [--connections 500] [--parallel 4]
 *   (or node --import tsx src/bench/hook-latency.ts, still against dist/cli.js)
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { ServerProcess } from "../harness/server-process.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(ROOT, "dist", "cli.js");

type Timings = { connect: number[]; subscribe: number[] };

/** A backend that allows everything at once: `{user}` for connect, `{}` for the rest. */
async function startBackend(): Promise<{ url: string; connections(): number; close(): void }> {
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c;
    });
    req.on("end", () => {
      const connect = body.includes('"event":"connect"');
      res.writeHead(200, { "content-type": "application/json" });
      res.end(connect ? '{"user":"bench"}' : "{}");
    });
  });
  server.keepAliveTimeout = 60_000;
  let connections = 0;
  server.on("connection", () => {
    connections += 1;
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, connections: () => connections, close: () => server.close() };
}

/** Opens one connection and subscribes it; returns its two latencies in ms, and the socket. */
async function openAndSubscribe(url: string, channel: string): Promise<[number, number, WebSocket]> {
  const t0 = performance.now();
  const ws = new WebSocket(url);
  await once(ws, "open");
  const t1 = performance.now();
  ws.send(JSON.stringify({ type: "subscribe", channel, id: 1 }));
  const [data] = (await once(ws, "message")) as [Buffer];
  const t2 = performance.now();
  const reply = JSON.parse(String(data)) as { type: string };
  if (reply.type !== "ack") throw new Error(`subscribe answered ${String(data)}`);
  return [t1 - t0, t2 - t1, ws];
}

async function run(label: string, args: string[], connections: number, parallel: number): Promise<Timings> {
  const server = await ServerProcess.start({
    command: process.execPath,
    args: [
      CLI,
      "start",
      "--port",
      "0",
      "--admin-port",
      "0",
      "--host",
      "127.0.0.1",
      "--workers",
      "1",
      ...args,
    ],
  });
  const timings: Timings = { connect: [], subscribe: [] };
  const sockets: WebSocket[] = [];
  try {
    // Warm-up (JIT, the hook client's kept-alive connections), not counted.
    for (let i = 0; i < 20; i++) sockets.push((await openAndSubscribe(server.wsUrl, `warm:${i}`))[2]);
    let next = 0;
    const lane = async () => {
      while (next < connections) {
        const i = next++;
        const [connect, subscribe, ws] = await openAndSubscribe(server.wsUrl, `bench:${i}`);
        timings.connect.push(connect);
        timings.subscribe.push(subscribe);
        sockets.push(ws);
      }
    };
    await Promise.all(Array.from({ length: parallel }, lane));
  } finally {
    for (const ws of sockets) ws.terminate();
    await server.stop();
  }
  console.log(
    `${label.padEnd(32)} ${summary("connect", timings.connect)}   ${summary("subscribe", timings.subscribe)}`,
  );
  return timings;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function summary(what: string, values: number[]): string {
  return `${what} p50 ${percentile(values, 50).toFixed(2)} ms p99 ${percentile(values, 99).toFixed(2)} ms`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { connections: { type: "string", default: "500" }, parallel: { type: "string", default: "4" } },
  });
  const connections = Number(values.connections);
  const parallel = Number(values.parallel);
  const backend = await startBackend();
  console.log(`${connections} raw connections, ${parallel} at a time, one worker; backend answers at once`);
  try {
    const plain = await run("no hooks", [], connections, parallel);
    const hooked = await run(
      "--connect-hook --subscribe-hook",
      ["--connect-hook", `${backend.url}/connect`, "--subscribe-hook", `${backend.url}/subscribe`],
      connections,
      parallel,
    );
    const added = (k: keyof Timings, p: number) => {
      const ms = percentile(hooked[k], p) - percentile(plain[k], p);
      return `${ms < 0 ? "" : "+"}${ms.toFixed(2)}`;
    };
    console.log(
      `added by the hooks: connect p50 ${added("connect", 50)} ms p99 ${added("connect", 99)} ms; ` +
        `subscribe p50 ${added("subscribe", 50)} ms p99 ${added("subscribe", 99)} ms`,
    );
    console.log(
      `hook calls: ${2 * (connections + 20)} over ${backend.connections()} TCP connections (kept alive)`,
    );
  } finally {
    backend.close();
  }
}

await main();
