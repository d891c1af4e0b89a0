import { readFileSync } from "node:fs";
import { DEFAULT_ADMIN_URL } from "./defaults.js";
import {
  DASH,
  deliveriesOf,
  EXIT_UNREACHABLE,
  healthOf,
  publishedOf,
  type Rates,
  ratesBetween,
  statusLines,
} from "./table.js";

/** How long one read of the admin port may take before it counts as unreachable. */
const READ_TIMEOUT_MS = 5000;
const WATCH_EVERY_MS = 1000;

export type StatusOptions = {
  watch: boolean;
  json: boolean;
  /** The admin port's base URL (or its /status URL); a password may sit in it (`http://:secret@host:9090`). */
  admin: string;
  /** --admin-password of the server (sent as `Authorization: Bearer`); null: none, or the one in the URL. */
  password: string | null;
};

export class UsageError extends Error {}

/** `http://host:port`, `host:port`, with or without a trailing `/status`: the base URL, or a UsageError. */
export function adminBase(input: string): string {
  return adminTarget(input).base;
}

/** The base URL without credentials, and the password its userinfo carried (Basic's user name is ignored). */
export function adminTarget(input: string): { base: string; password: string | null } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(input) ? input : `http://${input}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--admin ${JSON.stringify(input)} is not a URL (e.g. ${DEFAULT_ADMIN_URL})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new UsageError(`--admin ${JSON.stringify(input)}: only http and https URLs`);
  const path = url.pathname.replace(/\/+$/, "").replace(/\/status$/, "");
  const password = url.password ? decodeURIComponent(url.password) : null;
  return { base: `${url.origin}${path}`, password };
}

/** One line naming what failed: `connect ECONNREFUSED 127.0.0.1:9090`, `HTTP 404`, … */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  if (err.name === "TimeoutError" || err.name === "AbortError")
    return `no answer within ${READ_TIMEOUT_MS} ms`;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    // Node's fetch: TypeError("fetch failed") with the socket error as cause.
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return err.message;
}

async function getText(url: string, password: string | null): Promise<string> {
  const headers: Record<string, string> = password ? { authorization: `Bearer ${password}` } : {};
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(READ_TIMEOUT_MS) });
  const body = await res.text();
  if (res.status === 401)
    throw new Error(
      password
        ? "HTTP 401: the admin password was refused"
        : "HTTP 401: the admin port needs its password (--admin-password, --admin-password-file or ADMIN_PASSWORD)",
    );
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${body.slice(0, 120).replace(/\s+/g, " ")}`);
  return body;
}

type Read = { status: unknown; text: string; published: number | null; delivered: number | null };

/** Sums a counter's series in Prometheus text (for servers whose /status does not include the figure). */
export function counterFromMetrics(text: string, name: string): number | null {
  let total: number | null = null;
  for (const line of text.split("\n")) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    const n = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(n)) total = (total ?? 0) + n;
  }
  return total;
}

type Target = { base: string; password: string | null };

async function read({ base, password }: Target, needPublished: boolean): Promise<Read> {
  const url = `${base}/status`;
  let text: string;
  let status: unknown;
  try {
    text = await getText(url, password);
    status = JSON.parse(text);
  } catch (err) {
    throw new Error(`cannot read ${url}: ${err instanceof SyntaxError ? "not JSON" : describe(err)}`);
  }
  let published = publishedOf(status);
  if (published === null && needPublished) {
    // Older servers count published messages in /metrics only.
    published = await getText(`${base}/metrics`, password)
      .then((m) => counterFromMetrics(m, "switchboard_published_total"))
      .catch(() => null);
  }
  return { status, text, published, delivered: deliveriesOf(status) };
}

function oneLine(text: string): string {
  return JSON.stringify(JSON.parse(text));
}

const HOME = "\x1b[H";
const CLEAR_LINE = "\x1b[K";
const CLEAR_BELOW = "\x1b[J";
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";

/**
 * Runs `switchboard status`; resolves with the exit code (0 ready, 1 degraded, 2 unreachable or bad usage). With
 * --watch it runs until SIGINT/SIGTERM and exits with the code of the last read.
 */
export async function runStatus(opts: StatusOptions): Promise<number> {
  let target: Target;
  try {
    const t = adminTarget(opts.admin);
    target = { base: t.base, password: opts.password ?? t.password };
  } catch (err) {
    process.stderr.write(`switchboard status: ${(err as Error).message}\n`);
    return EXIT_UNREACHABLE;
  }
  if (!opts.watch) {
    try {
      const r = await read(target, !opts.json);
      if (opts.json) process.stdout.write(r.text.endsWith("\n") ? r.text : `${r.text}\n`);
      else process.stdout.write(`${statusLines({ status: r.status, published: r.published }).join("\n")}\n`);
      return healthOf(r.status).code;
    } catch (err) {
      process.stderr.write(`switchboard status: ${(err as Error).message}\n`);
      return EXIT_UNREACHABLE;
    }
  }
  return watch(target, opts.json);
}

function watch(target: Target, json: boolean): Promise<number> {
  const tty = !json;
  let lastCode = EXIT_UNREACHABLE;
  let previous: { read: Read; at: number } | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  return new Promise<number>((resolve) => {
    const stop = () => {
      if (stopped) return;
      stopped = true;
      if (timer) clearTimeout(timer);
      if (tty) process.stdout.write(SHOW_CURSOR);
      resolve(lastCode);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (tty) process.stdout.write(`${HIDE_CURSOR}${HOME}${CLEAR_BELOW}`);
    const frame = async () => {
      const started = performance.now();
      let lines: string[];
      try {
        const r = await read(target, !json);
        lastCode = healthOf(r.status).code;
        let rates: Rates = null;
        if (previous) {
          const seconds = (started - previous.at) / 1000;
          rates = ratesBetween(previous.read, r, seconds);
        }
        previous = { read: r, at: started };
        if (json) {
          if (!stopped) process.stdout.write(`${oneLine(r.text)}\n`);
          lines = [];
        } else lines = statusLines({ status: r.status, published: r.published, rates });
      } catch (err) {
        lastCode = EXIT_UNREACHABLE;
        previous = null;
        if (json) {
          if (!stopped) process.stderr.write(`switchboard status: ${(err as Error).message}\n`);
          lines = [];
        } else lines = [`switchboard status: ${(err as Error).message}`, `(retrying; rates ${DASH})`];
      }
      if (stopped) return;
      if (tty) {
        const footer = `${target.base}   every ${WATCH_EVERY_MS / 1000} s   ${new Date().toLocaleTimeString()}   Ctrl-C to stop`;
        const body = [...lines, "", footer].map((l) => `${l}${CLEAR_LINE}`).join("\n");
        process.stdout.write(`${HOME}${body}\n${CLEAR_BELOW}`);
      }
      timer = setTimeout(frame, Math.max(0, WATCH_EVERY_MS - (performance.now() - started)));
    };
    void frame();
  });
}

/**
 * The admin password from the flag, else the file (flag, then ADMIN_PASSWORD_FILE), else ADMIN_PASSWORD — the
 * server's own settings' names, so one environment serves both. An Error when the file cannot be read.
 */
export function passwordFrom(
  flag: string | undefined,
  file: string | undefined,
  env: NodeJS.ProcessEnv,
): string | null | Error {
  if (flag) return flag;
  const path = file ?? env.ADMIN_PASSWORD_FILE;
  if (path) {
    try {
      // As the server reads it: one trailing newline is not part of the password.
      return readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      return new Error(`cannot read the admin password file ${path}: ${(err as Error).message}`);
    }
  }
  return env.ADMIN_PASSWORD || null;
}
