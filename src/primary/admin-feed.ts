import type { IncomingMessage, ServerResponse } from "node:http";
import { IPC_TAG, type ToPrimary } from "../ipc.js";
import { type HistogramSnapshot, quantileMs, snapshotDelta } from "../metrics/latency-histogram.js";
import type { Supervisor } from "./supervisor.js";
import type { WorkerBridge } from "./worker-bridge.js";

/** One second of the instance, as the admin page charts it. */
export type FeedSample = {
  t: number;
  instance: string;
  version: string;
  phase: string;
  uptimeSeconds: number;
  crashLoop: boolean;
  restarts: number;
  workers: {
    slot: number;
    pid: number | undefined;
    state: string;
    raw: number;
    sio: number;
    lagMs: number | null;
    utilization: number | null;
    rssMiB: number;
    ipcPendingBytes: number;
  }[];
  connections: { raw: number; sio: number };
  publishedPerSec: number;
  deliveriesPerSec: number;
  slowPerSec: number;
  rateLimitedPerSec: number;
  fanout: { p50Ms: number | null; p99Ms: number | null };
  totals: {
    published: number;
    delivered: number;
    slowConsumers: number;
    rateLimited: number;
    drained: number;
  };
  redis: { state: string; pingMs: number | null } | null;
  drain: { active: boolean; connectionsLeft: number; drained: number };
};

/**
 * What a drain has left: the whole instance's connections while it drains (SIGTERM, promote), or those of the
 * workers being drained one by one (SIGHUP's rolling reload).
 */
function drainProgress(phase: string, workers: FeedSample["workers"], drained: number): FeedSample["drain"] {
  const leaving = phase === "draining" ? workers : workers.filter((w) => w.state === "draining");
  return {
    active: phase === "draining" || leaving.length > 0,
    connectionsLeft: leaving.reduce((n, w) => n + w.raw + w.sio, 0),
    drained,
  };
}

export type FeedTotals = {
  delivered: number;
  slowConsumers: number;
  errors: Record<string, number>;
  fanout: HistogramSnapshot;
  drained: number;
};

export type AdminFeedDeps = {
  instance: string;
  version: string;
  supervisor: Supervisor;
  bridge: WorkerBridge;
  phase(): string;
  totals(): FeedTotals;
  redis(): { state: string; pingSeconds: number | null } | null;
};

/** Five minutes of samples: what a page opened now starts its charts with. */
const KEEP_SAMPLES = 300;
const SAMPLE_MS = 1000;
/** Per-channel publish rates are counted over this window. */
const RATE_WINDOW_MS = 10_000;
const SEARCH_TIMEOUT_MS = 1000;

export type ChannelRow = { channel: string; subscribers: number; perSec: number };

/**
 * The admin page's data: one sample of the whole instance per second, taken from what workers report anyway (no
 * per-connection work, whether a page is open or not), kept for five minutes and streamed to open pages over
 * server-sent events; and the channel search (top channels by subscribers, asked of the workers on demand, and by
 * publish rate, counted per message in the primary).
 */
export class AdminFeed {
  readonly #d: AdminFeedDeps;
  readonly #samples: FeedSample[] = [];
  readonly #pages = new Set<ServerResponse>();
  readonly #timer: NodeJS.Timeout;
  #previous: { t: number; published: number; totals: FeedTotals } | null = null;
  /** Messages per channel in the window being counted, and in the last whole one (what the search reports). */
  #rates = new Map<string, number>();
  #lastRates = new Map<string, number>();
  #rateWindowStart = Date.now();
  #nextQid = 1;
  readonly #searches = new Map<number, { waiting: number; rows: Map<string, number>; done: () => void }>();

  constructor(d: AdminFeedDeps) {
    this.#d = d;
    this.#timer = setInterval(() => this.#sample(), SAMPLE_MS);
    this.#timer.unref();
  }

  /** The latest sample (null in the first second). */
  get latest(): FeedSample | null {
    return this.#samples[this.#samples.length - 1] ?? null;
  }

  /** `GET /feed`: the kept samples as one `history` event, then one `sample` event per second. */
  serve(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    res.write(`event: history\ndata: ${JSON.stringify(this.#samples)}\n\n`);
    this.#pages.add(res);
    req.on("close", () => this.#pages.delete(res));
  }

  /** A worker's answer to a channel search. */
  onWorkerMessage(message: ToPrimary): void {
    if (message.kind !== "topChannels") return;
    const search = this.#searches.get(message.qid);
    if (!search) return;
    for (const [channel, n] of message.channels)
      search.rows.set(channel, (search.rows.get(channel) ?? 0) + n);
    search.waiting -= 1;
    if (search.waiting === 0) search.done();
  }

  /** Channels containing `text`: the most subscribed and the busiest, `limit` each. */
  async search(text: string, limit: number): Promise<{ bySubscribers: ChannelRow[]; byRate: ChannelRow[] }> {
    const subscribers = await this.#askWorkers(text, limit * 4);
    const perSec = (c: string) => (this.#lastRates.get(c) ?? 0) / (RATE_WINDOW_MS / 1000);
    const row = (channel: string): ChannelRow => ({
      channel,
      subscribers: subscribers.get(channel) ?? 0,
      perSec: perSec(channel),
    });
    const bySubscribers = [...subscribers.keys()]
      .sort((a, b) => (subscribers.get(b) ?? 0) - (subscribers.get(a) ?? 0))
      .slice(0, limit)
      .map(row);
    const byRate = [...this.#lastRates.keys()]
      .filter((c) => c.includes(text))
      .sort((a, b) => perSec(b) - perSec(a))
      .slice(0, limit)
      .map(row);
    return { bySubscribers, byRate };
  }

  #askWorkers(text: string, limit: number): Promise<Map<string, number>> {
    const workers = [...this.#d.supervisor.workers].filter((w) => w.state === "ready");
    const qid = this.#nextQid++;
    const rows = new Map<string, number>();
    if (workers.length === 0) return Promise.resolve(rows);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#searches.delete(qid);
        resolve(rows);
      };
      // A worker that does not answer in time is left out (its channels are missing from this answer).
      const timer = setTimeout(done, SEARCH_TIMEOUT_MS);
      this.#searches.set(qid, { waiting: workers.length, rows, done });
      for (const w of workers)
        this.#d.supervisor.send(w, { tag: IPC_TAG, kind: "topChannels", qid, text, limit });
    });
  }

  /** Counts one message of `channel` reaching this host (the per-channel rate of the search). */
  published(channel: string): void {
    this.#rates.set(channel, (this.#rates.get(channel) ?? 0) + 1);
  }

  #sample(): void {
    const now = Date.now();
    const d = this.#d;
    const totals = d.totals();
    const published = d.bridge.published;
    const prev = this.#previous ?? { t: now - SAMPLE_MS, published, totals };
    const secs = Math.max(0.001, (now - prev.t) / 1000);
    const per = (a: number, b: number) => Math.max(0, a - b) / secs;
    const rateLimited = totals.errors.rate_limited ?? 0;
    const recent = snapshotDelta(totals.fanout, prev.totals.fanout);
    const workers = [...d.supervisor.workers].map((w) => ({
      slot: w.slot,
      pid: w.worker.process.pid,
      state: w.state,
      raw: w.stats?.rawConnections ?? 0,
      sio: w.stats?.sioConnections ?? 0,
      lagMs: w.stats?.eventLoop?.lagP99Ms ?? null,
      utilization: w.stats?.eventLoop?.utilization ?? null,
      rssMiB: (w.stats?.rssBytes ?? 0) / 2 ** 20,
      ipcPendingBytes: d.bridge.pendingBytes(w.worker.id),
    }));
    const raw = workers.reduce((n, w) => n + w.raw, 0);
    const sio = workers.reduce((n, w) => n + w.sio, 0);
    const redis = d.redis();
    const phase = d.phase();
    const sample: FeedSample = {
      t: now,
      instance: d.instance,
      version: d.version,
      phase,
      uptimeSeconds: Math.round(process.uptime()),
      crashLoop: d.supervisor.crashLooping(),
      restarts: d.supervisor.restarts,
      workers,
      connections: { raw, sio },
      publishedPerSec: per(published, prev.published),
      deliveriesPerSec: per(totals.delivered, prev.totals.delivered),
      slowPerSec: per(totals.slowConsumers, prev.totals.slowConsumers),
      rateLimitedPerSec: per(rateLimited, prev.totals.errors.rate_limited ?? 0),
      fanout: { p50Ms: quantileMs(recent, 0.5), p99Ms: quantileMs(recent, 0.99) },
      totals: {
        published,
        delivered: totals.delivered,
        slowConsumers: totals.slowConsumers,
        rateLimited,
        drained: totals.drained,
      },
      redis: redis
        ? { state: redis.state, pingMs: redis.pingSeconds === null ? null : redis.pingSeconds * 1000 }
        : null,
      drain: drainProgress(phase, workers, totals.drained),
    };
    this.#previous = { t: now, published, totals };
    this.#samples.push(sample);
    if (this.#samples.length > KEEP_SAMPLES) this.#samples.shift();
    if (now - this.#rateWindowStart >= RATE_WINDOW_MS) {
      this.#lastRates = this.#rates;
      this.#rates = new Map();
      this.#rateWindowStart = now;
    }
    if (this.#pages.size === 0) return;
    const text = `event: sample\ndata: ${JSON.stringify(sample)}\n\n`;
    for (const page of this.#pages) page.write(text);
  }

  close(): void {
    clearInterval(this.#timer);
    for (const page of this.#pages) page.end();
  }
}
