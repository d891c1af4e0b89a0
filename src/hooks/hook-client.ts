import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { SIGNATURE_HEADER, signature } from "../backend/signature.js";
import { SwitchboardError } from "../errors.js";
import type { Logger } from "../log.js";
import type { WorkerCounters } from "../worker/worker-counters.js";
import { OutageLog } from "./outage-log.js";

export type HookName = "connect" | "subscribe" | "publish" | "rpc" | "refresh";

/** A backend's answer: a JSON object (what it means depends on the hook). */
export type HookAnswer = Record<string, unknown>;

type Unavailable = "timeout" | "failed" | "overloaded";

/** Longest answer read from a backend; beyond it the call failed (a runaway response must not fill memory). */
const MAX_ANSWER_BYTES = 1024 * 1024;

export type HookClientOptions = {
  secret: string | null;
  timeoutMs: number;
  concurrency: number;
  counters: WorkerCounters;
  log: Logger;
};

/**
 * POSTs hook requests to the backend: JSON, signed when a secret is set, over kept-alive connections (a hook per
 * connect must not cost a TCP handshake each), bounded in time (--hook-timeout) and in number (--hook-concurrency
 * in flight per worker; beyond it a call fails at once). Every call is counted by outcome; an outage is logged once.
 */
export class HookClient {
  readonly #o: HookClientOptions;
  readonly #outages: OutageLog;
  readonly #http: HttpAgent;
  readonly #https: HttpsAgent;
  #inFlight = 0;

  constructor(o: HookClientOptions) {
    this.#o = o;
    this.#outages = new OutageLog(o.log);
    const agent = { keepAlive: true, maxSockets: o.concurrency, scheduling: "lifo" as const };
    this.#http = new HttpAgent(agent);
    this.#https = new HttpsAgent(agent);
  }

  /**
   * Resolves with what `read` makes of the backend's answer, or rejects: with what `read` throws when that is a
   * SwitchboardError (a refusal the answer spelled out), else with backend_unavailable: a timeout, a connection
   * error, a non-2xx status, an answer that is not a JSON object or that `read` cannot make sense of.
   */
  async call<T>(hook: HookName, url: string, payload: object, read: (answer: HookAnswer) => T): Promise<T> {
    if (this.#inFlight >= this.#o.concurrency) {
      return this.#unavailable(hook, url, "overloaded", `more than ${this.#o.concurrency} calls in flight`);
    }
    this.#inFlight += 1;
    let answer: HookAnswer;
    const started = performance.now();
    try {
      answer = await this.#post(url, JSON.stringify(payload));
    } catch (err) {
      return this.#unavailable(
        hook,
        url,
        err instanceof HookTimeout ? "timeout" : "failed",
        (err as Error).message,
        performance.now() - started,
      );
    } finally {
      this.#inFlight -= 1;
    }
    const tookMs = performance.now() - started;
    let value: T;
    try {
      value = read(answer);
    } catch (err) {
      if (!(err instanceof SwitchboardError)) {
        return this.#unavailable(hook, url, "failed", `unusable answer: ${(err as Error).message}`, tookMs);
      }
      this.#answered(hook, url, answer, tookMs);
      throw err;
    }
    this.#answered(hook, url, answer, tookMs);
    return value;
  }

  #answered(hook: HookName, url: string, answer: HookAnswer, tookMs: number): void {
    this.#o.counters.hookCall(hook, isDenial(answer) ? "denied" : "ok", tookMs);
    this.#outages.answered(hook, url);
  }

  /** `tookMs`: how long the call took (none when it was not made: overloaded). */
  #unavailable(hook: HookName, url: string, outcome: Unavailable, reason: string, tookMs?: number): never {
    this.#o.counters.hookCall(hook, outcome, tookMs);
    this.#outages.failed(hook, url, reason);
    throw new SwitchboardError(
      "backend_unavailable",
      outcome === "timeout"
        ? `the backend did not answer the ${hook} hook within ${this.#o.timeoutMs} ms`
        : outcome === "overloaded"
          ? "too many backend calls in flight; retry later"
          : `the backend's ${hook} hook failed`,
    );
  }

  #post(url: string, body: string): Promise<HookAnswer> {
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    };
    if (this.#o.secret) headers[SIGNATURE_HEADER] = signature(this.#o.secret, body);
    const https = url.startsWith("https:");
    const send = https ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(url, { method: "POST", headers, agent: https ? this.#https : this.#http });
      // The whole call, answer included, within the timeout: a backend that sends headers and stalls counts too.
      const timer = setTimeout(() => req.destroy(new HookTimeout()), this.#o.timeoutMs);
      const fail = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      req.on("error", fail);
      req.on("response", (res) =>
        readAnswer(res).then((answer) => {
          clearTimeout(timer);
          resolve(answer);
        }, fail),
      );
      req.end(body);
    });
  }
}

/** A hook answer that says no: an error, a disconnect, an expired session. Counted as "denied". */
function isDenial(answer: HookAnswer): boolean {
  return answer.error != null || answer.disconnect != null || answer.expired === true;
}

class HookTimeout extends Error {
  constructor() {
    super("timed out");
  }
}

async function readAnswer(res: IncomingMessage): Promise<HookAnswer> {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    res.resume();
    throw new Error(`answered HTTP ${status}`);
  }
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res) {
    bytes += (chunk as Buffer).length;
    if (bytes > MAX_ANSWER_BYTES) {
      res.destroy();
      throw new Error(`answer over ${MAX_ANSWER_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new Error("answer is not JSON");
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer))
    throw new Error("answer is not a JSON object");
  return answer as HookAnswer;
}
