/**
 * Waiting for a colour to come up (its /ready, HAProxy's health checks) or to go away (its port).
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Colour } from "./colours.js";
import { messageOf } from "./errors.js";
import { readBackend, serverKey } from "./haproxy-colours.js";
import type { PromoteOptions } from "./options.js";
import { httpGet, portClosed } from "./probes.js";
import { OP_RUNNING } from "./servers-state.js";

const POLL_MS = 250;

/** Polls `url` until it answers 200, or throws after `timeoutMs` naming the last answer. */
export async function waitForReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    try {
      const res = await httpGet(url, {}, 2000);
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = messageOf(err);
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms (last: ${last})`);
}

/** Waits until every HAProxy's health check sees `colour` UP (within --ready-timeout). */
export async function waitHaproxyUp(
  opts: Pick<PromoteOptions, "backend" | "serverTemplate" | "ports" | "sockets" | "readyTimeoutMs">,
  colour: Colour,
): Promise<void> {
  const deadline = Date.now() + opts.readyTimeoutMs;
  const pending = new Set(opts.sockets);
  while (pending.size > 0) {
    for (const socket of [...pending]) {
      const servers = await readBackend(opts, socket);
      if (servers.get(serverKey(opts, colour))?.op === OP_RUNNING) pending.delete(socket);
    }
    if (pending.size === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `HAProxy health check does not see ${colour} UP within ${opts.readyTimeoutMs} ms on ${[...pending].join(", ")}`,
      );
    }
    await sleep(POLL_MS);
  }
}

/** Waits up to `timeoutMs` for host:port to stop accepting connections; false if it still does. */
export async function waitPortClosed(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let closed = await portClosed(host, port);
  while (!closed && Date.now() < deadline) {
    await sleep(POLL_MS);
    closed = await portClosed(host, port);
  }
  return closed;
}
