/**
 * Scenario H's subscribers: clients of the SDK (`switchboard/client`'s Switchboard over `ws`), all on one
 * channel, whose URL is a function (the live colour). Two kinds:
 * - "resume": the SDK as shipped: it follows `reconnect` frames and resumes with since + epoch;
 * - "fresh": the reference. The same SDK and reconnect timing, but every reconnection subscribes again without
 *   since/epoch (a new subscription at the channel's position then): what a hand-written client that does not
 *   resume, or plain Socket.IO rejoining a room, gets.
 * Each client records what it received (publish numbers, offsets) so that, against the publisher's acks, the
 * messages it missed, got twice or out of order can be counted; and when it left blue and subscribed again.
 */
import WebSocket from "ws";
import { type Subscribed, type Subscription, Switchboard } from "../../client/index.js";
import type { Acked } from "./promote-publisher.js";

export type ResumeMode = "resume" | "fresh";

/** Close code of a drain: the server sent a `reconnect` frame first. */
const CLOSE_SERVICE_RESTART = 1012;

interface Message {
  n?: unknown;
  final?: unknown;
}

class RecoveryClient {
  readonly sb: Switchboard;
  sub: Subscription;
  /** Position of the first subscription: every acknowledged message above it is owed to the client. */
  firstOffset: number | null = null;
  firstEpoch: string | null = null;
  subscribed = false;
  /** Publish numbers received (once each); deliveries counts every one. */
  readonly got = new Set<number>();
  deliveries = 0;
  duplicates = 0;
  outOfOrder = 0;
  #lastOffset = Number.NEGATIVE_INFINITY;
  gaps = 0;
  recovered = 0;
  gotFinal = false;
  /** Connection opens, closes by code, and attempts that never opened. */
  opens = 0;
  readonly closes = new Map<number, number>();
  failedAttempts = 0;
  /** The last few errors the SDK reported (for the diagnosis of a client that never subscribed). */
  readonly errors: string[] = [];
  readonly firstFrames: string[] = [];
  /** Once the promote began: when the first connection loss came (ms since epoch), and the next confirmation. */
  leftAt: number | null = null;
  /** The first connection opened after leaving (to green). */
  reopenedAt: number | null = null;
  resubscribedAt: number | null = null;

  constructor(
    readonly group: RecoveryClients,
    url: () => string,
    readonly channel: string,
    readonly mode: ResumeMode,
  ) {
    const client = this;
    class WatchedWebSocket extends WebSocket {
      constructor(target: string) {
        super(target);
        let opened = false;
        this.on("open", () => {
          opened = true;
          client.opens++;
          if (client.leftAt !== null && client.reopenedAt === null) client.reopenedAt = Date.now();
        });
        this.on("close", (code: number) => {
          if (group.closed) return;
          if (!opened) client.failedAttempts++;
          client.closes.set(code, (client.closes.get(code) ?? 0) + 1);
        });
        // The first frames each way, for the diagnosis of a client that never subscribed.
        this.on("message", (data: Buffer) => {
          if (client.firstFrames.length < 4) client.firstFrames.push(`< ${String(data).slice(0, 120)}`);
        });
        // The SDK listens through onerror; an error nobody else listens to must not throw.
        this.on("error", () => undefined);
      }
      override send(data: string): void {
        if (client.firstFrames.length < 4) client.firstFrames.push(`> ${data.slice(0, 120)}`);
        super.send(data);
      }
    }
    // Quiet: a drain closes sockets, which the SDK reports as errors ("socket_error"); counted by code above.
    this.sb = new Switchboard(url, { WebSocket: WatchedWebSocket });
    this.sb.on("error", (err) => {
      if (this.errors.length >= 3) this.errors.shift();
      this.errors.push(`${(err as { code?: string }).code ?? "error"}: ${err.message}`);
    });
    this.sb.on("state", (state, previous) => {
      if (previous === "connected" && state !== "connected") {
        this.subscribed = false;
        if (group.promoting && this.leftAt === null) this.leftAt = Date.now();
        // The reference client forgets its position: the next connection subscribes afresh.
        if (this.mode === "fresh" && state === "disconnected") {
          this.sub.unsubscribe();
          this.sub = this.#subscribe();
        }
      }
    });
    this.sub = this.#subscribe();
  }

  #subscribe(): Subscription {
    return this.sb.subscribe(this.channel, {
      onMessage: (data, meta) => this.#message(data as Message | null, meta.offset),
      onSubscribed: (s) => this.#subscribed(s),
      onGap: () => {
        this.gaps++;
      },
    });
  }

  #message(data: Message | null, offset: number): void {
    const n = data?.n;
    if (typeof n !== "number") return;
    this.deliveries++;
    if (this.got.has(n)) this.duplicates++;
    else this.got.add(n);
    if (offset <= this.#lastOffset) this.outOfOrder++;
    this.#lastOffset = Math.max(this.#lastOffset, offset);
    if (data?.final === true && !this.gotFinal) {
      this.gotFinal = true;
      this.group.finals++;
    }
  }

  #subscribed(s: Subscribed): void {
    this.subscribed = true;
    if (this.firstOffset === null) {
      this.firstOffset = s.offset;
      this.firstEpoch = s.epoch;
      this.group.firstSubscribed++;
    } else if (this.leftAt !== null && this.resubscribedAt === null) {
      this.resubscribedAt = Date.now();
      this.group.moved++;
    }
    if (s.recovered) this.recovered++;
  }
}

/** What a group of clients got, checked against the publisher's acknowledged messages. */
export interface ClientsSummary {
  clients: number;
  /** Messages owed (acknowledged, offset above the client's first offset, summed over clients). */
  owed: number;
  missed: number;
  /** Clients that missed at least one message. */
  clientsMissing: number;
  duplicates: number;
  outOfOrder: number;
  gaps: number;
  /** Clients that got `recovered: true` on at least one resubscribe. */
  recoveredClients: number;
  /** Clients that lost their connection after the promote began and were confirmed subscribed again. */
  movedClients: number;
  /** Clients that left and never subscribed again. */
  strandedClients: number;
  failedAttempts: number;
  /** Closes that were not a drain's 1012 (before the clients were closed at the end). */
  unexpectedCloses: number;
  drainCloses: number;
  /** Connections opened after the first one, summed. */
  reconnects: number;
  clientsWithoutFinal: number;
  /** First connection loss → last confirmed resubscription, ms; NaN when nobody moved. */
  moveMs: number;
  /** Per moved client: connection lost → subscribed again (mean, p99), and new socket open → subscribe answered. */
  awayMeanMs: number;
  awayP99Ms: number;
  resubscribeP50Ms: number;
  resubscribeP99Ms: number;
  firstLeftAt: number;
  lastResubscribedAt: number;
  /** Acknowledged messages whose epoch is not the one a client first subscribed in (summed). */
  foreignEpoch: number;
}

export class RecoveryClients {
  readonly #clients: RecoveryClient[] = [];
  /** Set when the promote begins: connection losses from then on count as the move. */
  promoting = false;
  closed = false;
  firstSubscribed = 0;
  moved = 0;
  finals = 0;

  constructor(
    readonly count: number,
    readonly mode: ResumeMode,
    readonly channel: string,
    readonly url: () => string,
  ) {}

  get size(): number {
    return this.#clients.length;
  }

  /** Clients subscribed right now (confirmed on their current connection). */
  get subscribedNow(): number {
    return this.#clients.reduce((n, c) => n + (c.subscribed ? 1 : 0), 0);
  }

  /** Clients that left after the promote began and have not been confirmed on a new connection yet. */
  get away(): number {
    return this.#clients.reduce((n, c) => n + (c.leftAt !== null && c.resubscribedAt === null ? 1 : 0), 0);
  }

  /**
   * Creates and connects the clients, `batch` at a time, each batch once the previous one subscribed, or once no
   * further subscription was confirmed for `stallMs` (a subscribe that is never answered must not hold the run:
   * the caller reports and drops such clients).
   */
  async connect(batch: number, stallMs: number): Promise<void> {
    while (this.#clients.length < this.count) {
      const upTo = Math.min(this.count, this.#clients.length + batch);
      while (this.#clients.length < upTo) {
        const c = new RecoveryClient(this, this.url, this.channel, this.mode);
        this.#clients.push(c);
        c.sb.connect();
      }
      let seen = this.firstSubscribed;
      let progressAt = performance.now();
      while (this.firstSubscribed < this.#clients.length) {
        if (this.firstSubscribed > seen) {
          seen = this.firstSubscribed;
          progressAt = performance.now();
        } else if (performance.now() - progressAt > stallMs) break;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * Disconnects and forgets the clients whose first subscribe was never confirmed; returns what they were doing
   * (at most `max` described).
   */
  dropUnsubscribed(max = 3): { dropped: number; described: string } {
    const described = this.describeStuck(max);
    const stuck = this.#clients.filter((c) => c.firstOffset === null);
    for (const c of stuck) c.sb.disconnect();
    const keep = this.#clients.filter((c) => c.firstOffset !== null);
    this.#clients.length = 0;
    this.#clients.push(...keep);
    return { dropped: stuck.length, described };
  }

  /** What the clients whose first subscribe was never confirmed are doing (at most `max` of them), for an error message. */
  describeStuck(max = 3): string {
    return this.#clients
      .map((c, i) => ({ c, i }))
      .filter(({ c }) => c.firstOffset === null)
      .slice(0, max)
      .map(
        ({ c, i }) =>
          `client ${i}: state ${c.sb.state}, opens ${c.opens}, failed attempts ${c.failedAttempts}, ` +
          `closes ${JSON.stringify([...c.closes])}, first offset ${c.firstOffset}, errors ${JSON.stringify(c.errors)}, ` +
          `first frames ${JSON.stringify(c.firstFrames)}`,
      )
      .join("\n");
  }

  close(): void {
    this.closed = true;
    for (const c of this.#clients) c.sb.disconnect();
  }

  summarize(acked: readonly Acked[]): ClientsSummary {
    const out: ClientsSummary = {
      clients: 0,
      owed: 0,
      missed: 0,
      clientsMissing: 0,
      duplicates: 0,
      outOfOrder: 0,
      gaps: 0,
      recoveredClients: 0,
      movedClients: 0,
      strandedClients: 0,
      failedAttempts: 0,
      unexpectedCloses: 0,
      drainCloses: 0,
      reconnects: 0,
      clientsWithoutFinal: 0,
      moveMs: Number.NaN,
      awayMeanMs: Number.NaN,
      awayP99Ms: Number.NaN,
      resubscribeP50Ms: Number.NaN,
      resubscribeP99Ms: Number.NaN,
      firstLeftAt: Number.NaN,
      lastResubscribedAt: Number.NaN,
      foreignEpoch: 0,
    };
    const away: number[] = [];
    const resubscribe: number[] = [];
    let firstLeft = Number.POSITIVE_INFINITY;
    let lastBack = Number.NEGATIVE_INFINITY;
    for (const c of this.#clients) {
      if (c.firstOffset === null) continue; // never subscribed: owed nothing, reported as missing clients
      out.clients++;
      const first = c.firstOffset;
      let missed = 0;
      for (const a of acked) {
        if (a.epoch !== c.firstEpoch) out.foreignEpoch++;
        if (a.offset <= first) continue;
        out.owed++;
        if (!c.got.has(a.n)) missed++;
      }
      out.missed += missed;
      if (missed > 0) out.clientsMissing++;
      out.duplicates += c.duplicates;
      out.outOfOrder += c.outOfOrder;
      out.gaps += c.gaps;
      if (c.recovered > 0) out.recoveredClients++;
      if (c.leftAt !== null) {
        firstLeft = Math.min(firstLeft, c.leftAt);
        if (c.resubscribedAt !== null) {
          out.movedClients++;
          lastBack = Math.max(lastBack, c.resubscribedAt);
          away.push(c.resubscribedAt - c.leftAt);
          if (c.reopenedAt !== null) resubscribe.push(c.resubscribedAt - c.reopenedAt);
        } else out.strandedClients++;
      }
      out.failedAttempts += c.failedAttempts;
      for (const [code, n] of c.closes) {
        if (code === CLOSE_SERVICE_RESTART) out.drainCloses += n;
        else out.unexpectedCloses += n;
      }
      out.reconnects += Math.max(0, c.opens - 1);
      if (!c.gotFinal) out.clientsWithoutFinal++;
    }
    if (Number.isFinite(firstLeft)) out.firstLeftAt = firstLeft;
    if (Number.isFinite(lastBack)) {
      out.lastResubscribedAt = lastBack;
      out.moveMs = lastBack - firstLeft;
    }
    if (away.length > 0) out.awayMeanMs = away.reduce((a, b) => a + b, 0) / away.length;
    out.awayP99Ms = percentile(away, 99);
    out.resubscribeP50Ms = percentile(resubscribe, 50);
    out.resubscribeP99Ms = percentile(resubscribe, 99);
    return out;
  }
}

/** The p-th percentile (nearest rank) of `values`; NaN when empty. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Polls `done` every 50 ms until it holds or `deadline` (performance.now()) passes. */
export async function until(done: () => boolean, deadline: number): Promise<boolean> {
  while (!done()) {
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}
