/**
 * `switchboard status`: pure functions from the admin port's `/status` JSON to a health verdict and to the lines of a
 * terminal table. Nothing here reads the network or the clock, so the table is unit-tested (test/unit/status-table).
 *
 * The JSON is read defensively: fields a newer or older server lacks are shown as "—" or left out, never an error.
 */

/** Exit codes (docs/monitoring.md): a health script can branch on them. */
export const EXIT_READY = 0;
export const EXIT_DEGRADED = 1;
export const EXIT_UNREACHABLE = 2;

export const DASH = "—";

export type Health = { code: typeof EXIT_READY | typeof EXIT_DEGRADED; reasons: string[] };

/** Per-second rates from two reads (only with --watch; null on the first frame). */
export type Rates = { publishedPerSec: number | null; deliveriesPerSec: number | null } | null;

export type TableInput = {
  status: unknown;
  /** Published messages when /status does not say (the command reads it from /metrics then); null = unknown. */
  published?: number | null;
  /** undefined: not watching (no rate line); null: watching, first frame. */
  rates?: Rates;
};

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | null {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : null;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function workersOf(status: Obj): Obj[] {
  const list = status.workers;
  return Array.isArray(list) ? list.map(obj).filter((w): w is Obj => w !== null) : [];
}

/** The number of messages this host published, wherever this server version puts it in /status. */
export function publishedOf(status: unknown): number | null {
  const s = obj(status);
  if (!s) return null;
  return num(obj(s.totals)?.published) ?? num(s.published) ?? num(obj(s.bus)?.published);
}

/** Deliveries (messages written to clients) of the whole host, live workers and exited ones. */
export function deliveriesOf(status: unknown): number | null {
  const s = obj(status);
  if (!s) return null;
  return num(obj(s.totals)?.delivered) ?? num(obj(s.totals)?.deliveries);
}

/** The Redis link's state, or null when the server runs without --redis. */
function redisState(s: Obj): string | null {
  const redis = obj(s.redis);
  if (!redis) return null;
  return str(redis.state) ?? "unknown";
}

/**
 * 0 when the instance is running and ready: phase `running`, at least one ready worker, every worker ready, no crash
 * loop, the Redis link up when Redis is configured. Otherwise 1 with the reasons.
 */
export function healthOf(status: unknown): Health {
  const s = obj(status);
  if (!s) return { code: EXIT_DEGRADED, reasons: ["status is not a JSON object"] };
  const reasons: string[] = [];
  const phase = str(s.phase);
  if (phase !== "running") reasons.push(phase === "draining" ? "draining" : `phase ${phase ?? "unknown"}`);
  if (s.crashLoop === true) reasons.push("crash loop");
  const redis = redisState(s);
  if (redis !== null && redis !== "up") reasons.push(`redis ${redis}`);
  const workers = workersOf(s);
  const ready = workers.filter((w) => w.state === "ready").length;
  if (ready === 0) reasons.push("no ready worker");
  for (const w of workers) {
    if (w.state !== "ready") reasons.push(`worker ${String(w.slot ?? w.id ?? "?")} ${String(w.state)}`);
  }
  if (s.draining === true && phase !== "draining") reasons.push("draining");
  return { code: reasons.length === 0 ? EXIT_READY : EXIT_DEGRADED, reasons };
}

export function formatUptime(seconds: number | null): string {
  if (seconds === null) return DASH;
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m ${sec}s`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** A count with thousands separators (1,234,567), or "—". */
export function formatCount(n: number | null): string {
  if (n === null) return DASH;
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function formatRate(n: number | null): string {
  if (n === null) return DASH;
  return n >= 100 ? formatCount(n) : n.toFixed(1);
}

function formatMs(n: number | null): string {
  if (n === null) return DASH;
  return n >= 100 ? `${Math.round(n)} ms` : `${n.toFixed(1)} ms`;
}

function formatMiB(bytes: number | null): string {
  return bytes === null ? DASH : (bytes / 1048576).toFixed(1);
}

function formatPercent(ratio: number | null): string {
  return ratio === null ? DASH : `${Math.round(ratio * 100)}%`;
}

/** Lays out rows in columns: the first `left` columns left-aligned, the others right-aligned. */
export function columns(rows: string[][], left: number): string[] {
  const widths: number[] = [];
  for (const row of rows)
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  return rows.map((row) =>
    row
      .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/** The event-loop figures of a worker (new servers report them; older ones do not). */
function eventLoopOf(w: Obj): { lagMs: number | null; utilization: number | null } | null {
  const el = obj(w.eventLoop) ?? obj(obj(w.stats)?.eventLoop);
  if (!el) return null;
  return { lagMs: num(el.lagP99Ms), utilization: num(el.utilization) };
}

/** The table's lines (no trailing newlines, no ANSI codes). */
export function statusLines(input: TableInput): string[] {
  const s = obj(input.status) ?? {};
  const lines: string[] = [];
  const health = healthOf(s);

  const head: string[] = [
    `instance ${str(s.instance) ?? DASH}`,
    `phase ${str(s.phase) ?? DASH}`,
    `uptime ${formatUptime(num(s.uptimeSeconds))}`,
  ];
  const version = str(s.version);
  if (version) head.push(`version ${version}`);
  const colour = str(s.colour) ?? str(s.color);
  if (colour) head.push(`colour ${colour}`);
  const pid = num(s.pid);
  if (pid !== null) head.push(`pid ${pid}`);
  lines.push(`Switchboard  ${head.join("   ")}`);

  const second: string[] = [
    `crash loop ${s.crashLoop === true ? "YES" : s.crashLoop === false ? "no" : DASH}`,
    `restarts ${formatCount(num(s.restarts))}`,
  ];
  const redis = obj(s.redis);
  if (redis) {
    const since = str(redis.since);
    second.push(`redis ${redisState(s)}${since ? ` since ${since}` : ""}`);
  }
  const fanout = obj(s.fanout);
  if (fanout) second.push(`fan-out p50 ${formatMs(num(fanout.p50Ms))} p99 ${formatMs(num(fanout.p99Ms))}`);
  lines.push(second.join("   "));
  lines.push(health.code === EXIT_READY ? "health ready" : `health DEGRADED: ${health.reasons.join(", ")}`);
  lines.push("");

  const workers = workersOf(s);
  const withLoop = workers.some((w) => eventLoopOf(w) !== null);
  const header = ["slot", "pid", "state", "raw", "socket.io", "RSS MiB"];
  if (withLoop) header.push("loop lag p99", "loop util");
  const rows: string[][] = [header];
  let raw = 0;
  let sio = 0;
  let rss = 0;
  for (const w of workers) {
    const stats = obj(w.stats);
    const r = num(stats?.rawConnections);
    const io = num(stats?.sioConnections);
    const mem = num(stats?.rssBytes);
    raw += r ?? 0;
    sio += io ?? 0;
    rss += mem ?? 0;
    const row = [
      String(w.slot ?? DASH),
      String(w.pid ?? DASH),
      String(w.state ?? DASH),
      formatCount(r),
      formatCount(io),
      formatMiB(mem),
    ];
    if (withLoop) {
      const el = eventLoopOf(w);
      row.push(formatMs(el?.lagMs ?? null), formatPercent(el?.utilization ?? null));
    }
    rows.push(row);
  }
  rows.push(["total", "", `${workers.length} workers`, formatCount(raw), formatCount(sio), formatMiB(rss)]);
  lines.push(...columns(rows, 3));
  lines.push("");

  const totals = obj(s.totals) ?? {};
  const published = publishedOf(s) ?? input.published ?? null;
  lines.push(
    [
      `published ${formatCount(published)}`,
      `deliveries ${formatCount(deliveriesOf(s))}`,
      `slow consumers ${formatCount(num(totals.slowConsumers))}`,
    ].join("   "),
  );
  if (input.rates !== undefined) {
    const rates = input.rates;
    lines.push(
      `published/s ${formatRate(rates?.publishedPerSec ?? null)}   deliveries/s ${formatRate(rates?.deliveriesPerSec ?? null)}`,
    );
  }
  const errors = Object.entries(obj(totals.errors) ?? {})
    .filter((e): e is [string, number] => num(e[1]) !== null && (e[1] as number) > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  lines.push(
    errors.length === 0
      ? "errors none"
      : `errors ${errors.map(([code, n]) => `${code} ${formatCount(n)}`).join("   ")}`,
  );
  const webhooks = obj(s.webhooks);
  if (webhooks) {
    const parts = Object.entries(webhooks)
      .filter((e): e is [string, number] => num(e[1]) !== null)
      .map(([k, n]) => `${k} ${formatCount(n)}`);
    lines.push(`webhooks ${parts.join("   ")}`);
  }
  return lines;
}

/** Rates from two reads `seconds` apart; a rate is null when a figure is missing or its counter went back. */
export function ratesBetween(
  before: { published: number | null; delivered: number | null },
  after: { published: number | null; delivered: number | null },
  seconds: number,
): Rates {
  if (seconds <= 0) return null;
  const rate = (a: number | null, b: number | null) =>
    a === null || b === null || b < a ? null : (b - a) / seconds;
  return {
    publishedPerSec: rate(before.published, after.published),
    deliveriesPerSec: rate(before.delivered, after.delivered),
  };
}
