/**
 * Scenario E's load: closed-loop single publishes over several keep-alive connections for a fixed time.
 */
import { epochMs, Histogram } from "../histogram.js";
import { HttpConn } from "./http-conn.js";
import type { PublishLoadCommand, PublishLoadResult } from "./ipc-messages.js";

export async function runPublishLoad(c: PublishLoadCommand): Promise<PublishLoadResult> {
  const latency = new Histogram();
  const conns = Array.from({ length: c.connections }, () => new HttpConn(c.port, c.localAddress));
  let requests = 0;
  let errors = 0;
  let non200 = 0;
  const start = performance.now();
  const stopAt = start + c.durationMs;
  const channel = JSON.stringify(c.channel);

  const loop = async (conn: HttpConn): Promise<void> => {
    let seq = 0;
    // Bounded by time; a server that stops answering ends the loop through the request timeout.
    while (performance.now() < stopAt) {
      const t0 = epochMs();
      try {
        const res = await conn.post("/api/publish", `{"channel":${channel},"data":{"n":${seq++}}}`);
        if (res.status === 200) requests++;
        else non200++;
      } catch {
        errors++;
        if (errors > 10_000) return;
      }
      latency.record(epochMs() - t0);
    }
  };
  await Promise.all(conns.map(loop));
  const elapsedMs = performance.now() - start;
  let connects = 0;
  for (const conn of conns) {
    connects += conn.connects;
    conn.close();
  }
  return { requests, errors, non200, elapsedMs, connects, latency: latency.snapshot() };
}
