import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { z } from "zod";

/**
 * Every setting, once: its flag, its environment variable, its default and a doc line.
 * Flags, env, the JSON config file, `--help` and the README table all come from this table.
 */
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([
  z.boolean(),
  z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1"),
]);
const optionalString = z.string().min(1).nullable();
const optionalUrl = z
  .string()
  .regex(/^https?:\/\/[^\s]+$/, "an http:// or https:// URL")
  .nullable();

/** One namespace's settings; what is left out falls back to the "" entry, then to the flags. */
const namespaceSchema = z.strictObject({
  historySize: int(0, 100_000).optional(),
  historyTtlMs: int(1000, 86_400_000).optional(),
  clientPublish: z.boolean().optional(),
  presence: z.boolean().optional(),
  /** Subscribers get `join` / `leave` messages as users come and go (with presence). */
  joinLeave: z.boolean().optional(),
  /** false: this namespace's subscribes / client publishes skip --subscribe-hook / --publish-hook. */
  subscribeHook: z.boolean().optional(),
  publishHook: z.boolean().optional(),
});
export type NamespaceSettings = z.output<typeof namespaceSchema>;

/** `namespaces`: an object (config file) or the same as JSON text (flag, environment). */
const namespacesSchema = z.preprocess(
  (v) => {
    if (typeof v !== "string") return v;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  },
  z.record(
    z.string().regex(/^[A-Za-z0-9_.-]*$/, "namespace names are letters, digits, _ . -"),
    namespaceSchema,
  ),
);

export const settings = {
  port: {
    flag: "port",
    env: "PORT",
    def: 8080,
    schema: int(0, 65535),
    doc: "public port (ws, Socket.IO, publish API, /health, /ready)",
  },
  host: { flag: "host", env: "HOST", def: "0.0.0.0", schema: z.string().min(1), doc: "public bind address" },
  workers: {
    flag: "workers",
    env: "WORKERS",
    def: 0,
    schema: int(0, 256),
    doc: "worker processes (0 = one per core)",
  },
  redis: {
    flag: "redis",
    env: "REDIS_URL",
    def: null,
    schema: optionalString,
    doc: "redis:// URL (or comma-separated seeds with --redis-cluster); none = single host",
  },
  redisCluster: {
    flag: "redis-cluster",
    env: "REDIS_CLUSTER",
    def: false,
    schema: bool,
    doc: "treat --redis as Redis Cluster seeds and use sharded pub/sub",
  },
  redisPrefix: {
    flag: "redis-prefix",
    env: "REDIS_PREFIX",
    def: "switchboard",
    schema: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "letters, digits, _ . : - (1-64)"),
    doc: "prefix of Redis keys and channels; instances that share messages (blue/green, hosts) use the same",
  },
  adminPort: {
    flag: "admin-port",
    env: "ADMIN_PORT",
    def: 9090,
    schema: int(0, 65535),
    doc: "admin port: /metrics, /status",
  },
  adminHost: {
    flag: "admin-host",
    env: "ADMIN_HOST",
    def: "127.0.0.1",
    schema: z.string().min(1),
    doc: "admin bind address",
  },
  adminPassword: {
    flag: "admin-password",
    env: "ADMIN_PASSWORD",
    def: null,
    schema: optionalString,
    doc: "password of every admin route (HTTP Basic, any user, or Bearer); required when --admin-host is not loopback",
  },
  adminPasswordFile: {
    flag: "admin-password-file",
    env: "ADMIN_PASSWORD_FILE",
    def: null,
    schema: optionalString,
    doc: "file holding the admin password (instead of --admin-password)",
  },
  instance: {
    flag: "instance",
    env: "INSTANCE",
    def: "default",
    schema: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, _ . - (1-64)"),
    doc: "instance name (blue / green); in logs, metrics, status",
  },
  apiKey: {
    flag: "api-key",
    env: "API_KEY",
    def: null,
    schema: optionalString,
    doc: "publish API key; none = loopback callers only",
  },
  jwtSecret: {
    flag: "jwt-secret",
    env: "JWT_SECRET",
    def: null,
    schema: optionalString,
    doc: "HS256 secret for connection tokens; none = anonymous",
  },
  jwtPublicKey: {
    flag: "jwt-public-key",
    env: "JWT_PUBLIC_KEY",
    def: null,
    schema: optionalString,
    doc: "PEM public key (RS256 / ES256) for connection tokens",
  },
  apiKeyFile: {
    flag: "api-key-file",
    env: "API_KEY_FILE",
    def: null,
    schema: optionalString,
    doc: "file holding the API key (instead of --api-key, which shows in ps; systemd LoadCredential)",
  },
  jwtSecretFile: {
    flag: "jwt-secret-file",
    env: "JWT_SECRET_FILE",
    def: null,
    schema: optionalString,
    doc: "file holding the HS256 secret (instead of --jwt-secret)",
  },
  jwtPublicKeyFile: {
    flag: "jwt-public-key-file",
    env: "JWT_PUBLIC_KEY_FILE",
    def: null,
    schema: optionalString,
    doc: "PEM file of the public key (instead of --jwt-public-key)",
  },
  jwtAudience: {
    flag: "jwt-audience",
    env: "JWT_AUDIENCE",
    def: null,
    schema: optionalString,
    doc: "required `aud` of connection tokens; none = not checked",
  },
  jwtIssuer: {
    flag: "jwt-issuer",
    env: "JWT_ISSUER",
    def: null,
    schema: optionalString,
    doc: "required `iss` of connection tokens; none = not checked",
  },
  connectHook: {
    flag: "connect-hook",
    env: "CONNECT_HOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL asked on every new connection (user, channels, meta); none = tokens or anonymous",
  },
  subscribeHook: {
    flag: "subscribe-hook",
    env: "SUBSCRIBE_HOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL that allows or denies each subscribe (namespaces may opt out)",
  },
  publishHook: {
    flag: "publish-hook",
    env: "PUBLISH_HOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL that allows, denies or rewrites each client publish (namespaces may opt out)",
  },
  rpcHook: {
    flag: "rpc-hook",
    env: "RPC_HOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL that answers clients' rpc calls",
  },
  refreshHook: {
    flag: "refresh-hook",
    env: "REFRESH_HOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL asked for a new expiry when a connection's expireAt comes",
  },
  webhook: {
    flag: "webhook",
    env: "WEBHOOK",
    def: null,
    schema: optionalUrl,
    doc: "backend URL that gets events in batches (channel_occupied/vacated, presence_join/leave, connection_closed)",
  },
  hookSecret: {
    flag: "hook-secret",
    env: "HOOK_SECRET",
    def: null,
    schema: optionalString,
    doc: "shared secret: hook and webhook requests carry X-Switchboard-Signature: sha256=<HMAC of the body>",
  },
  hookSecretFile: {
    flag: "hook-secret-file",
    env: "HOOK_SECRET_FILE",
    def: null,
    schema: optionalString,
    doc: "file holding the hook secret (instead of --hook-secret)",
  },
  hookTimeoutMs: {
    flag: "hook-timeout",
    env: "HOOK_TIMEOUT_MS",
    def: 1000,
    schema: int(10, 60_000),
    doc: "ms a hook call may take; then the client gets backend_unavailable",
  },
  hookConcurrency: {
    flag: "hook-concurrency",
    env: "HOOK_CONCURRENCY",
    def: 64,
    schema: int(1, 10_000),
    doc: "hook calls in flight per worker; beyond it the client gets backend_unavailable at once",
  },
  hookHeaders: {
    flag: "hook-headers",
    env: "HOOK_HEADERS",
    def: "cookie,authorization",
    schema: z.string().regex(/^[A-Za-z0-9_,-]*$/, "comma-separated header names"),
    doc: "request headers passed to the connect hook",
  },
  webhookQueue: {
    flag: "webhook-queue",
    env: "WEBHOOK_QUEUE",
    def: 10_000,
    schema: int(1, 10_000_000),
    doc: "webhook events kept per host while the backend is slow or down; beyond it the oldest are dropped and counted",
  },
  webhookRetryMs: {
    flag: "webhook-retry",
    env: "WEBHOOK_RETRY_MS",
    def: 60_000,
    schema: int(0, 86_400_000),
    doc: "ms a webhook batch is retried (with backoff) before it is dropped and counted",
  },
  presenceTtlMs: {
    flag: "presence-ttl",
    env: "PRESENCE_TTL_MS",
    def: 30_000,
    schema: int(1000, 3_600_000),
    doc: "ms a host's presence entries live in Redis without a refresh (a dead host's clients leave after it)",
  },
  drainTimeoutMs: {
    flag: "drain-timeout",
    env: "DRAIN_TIMEOUT_MS",
    def: 30000,
    schema: int(100, 3_600_000),
    doc: "ms a graceful drain may take before remaining connections are closed",
  },
  logLevel: {
    flag: "log-level",
    env: "LOG_LEVEL",
    def: "info",
    schema: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    doc: "pino log level",
  },
  maxPayloadBytes: {
    flag: "max-payload",
    env: "MAX_PAYLOAD_BYTES",
    def: 65536,
    schema: int(64, 16 * 1024 * 1024),
    doc: "largest client frame / published message, bytes",
  },
  maxSubscriptions: {
    flag: "max-subscriptions",
    env: "MAX_SUBSCRIPTIONS",
    def: 128,
    schema: int(1, 100_000),
    doc: "subscriptions per connection",
  },
  maxChannelLength: {
    flag: "max-channel-length",
    env: "MAX_CHANNEL_LENGTH",
    def: 128,
    schema: int(1, 1024),
    doc: "longest channel name, characters",
  },
  maxBufferedBytes: {
    flag: "max-buffered",
    env: "MAX_BUFFERED_BYTES",
    def: 1024 * 1024,
    schema: int(1024, 1024 * 1024 * 1024),
    doc: "unsent bytes per connection before it is closed as a slow consumer",
  },
  clientRate: {
    flag: "client-rate",
    env: "CLIENT_RATE",
    def: 100,
    schema: int(1, 1_000_000),
    doc: "client frames per second per connection (burst: 2x)",
  },
  publishNamespaces: {
    flag: "publish-namespaces",
    env: "PUBLISH_NAMESPACES",
    def: "chat",
    schema: z.string().regex(/^[A-Za-z0-9_.,-]*$/, "comma-separated namespace names"),
    doc: "namespaces (prefix before ':') where clients may publish; empty = none",
  },
  historySize: {
    flag: "history-size",
    env: "HISTORY_SIZE",
    def: 100,
    schema: int(0, 100_000),
    doc: "messages kept per channel for resume (since)",
  },
  historyTtlMs: {
    flag: "history-ttl",
    env: "HISTORY_TTL_MS",
    def: 300_000,
    schema: int(1000, 86_400_000),
    doc: "ms an idle channel's history is kept",
  },
  historyMaxBytes: {
    flag: "history-max-bytes",
    env: "HISTORY_MAX_BYTES",
    def: 128 * 1024 * 1024,
    schema: int(0, 2 ** 40),
    doc: "history bytes held in this host's memory (without Redis); beyond it the oldest idle channels' history is dropped",
  },
  idempotencyWindowMs: {
    flag: "idempotency-window",
    env: "IDEMPOTENCY_WINDOW_MS",
    def: 300_000,
    schema: int(0, 86_400_000),
    doc: "ms a publish's idempotencyKey is remembered (a repeat answers the first offset); 0 = off",
  },
  namespaces: {
    flag: "namespaces",
    env: "NAMESPACES",
    def: {},
    schema: namespacesSchema,
    doc: 'per-namespace settings (JSON), e.g. {"chat":{"historySize":50,"historyTtlMs":120000,"clientPublish":true}}',
  },
  pingIntervalMs: {
    flag: "ping-interval",
    env: "PING_INTERVAL_MS",
    def: 25_000,
    schema: int(100, 600_000),
    doc: "ms between heartbeats; a peer silent for two is dropped",
  },
  wsCompression: {
    flag: "ws-compression",
    env: "WS_COMPRESSION",
    def: false,
    schema: bool,
    doc: "permessage-deflate on /ws (costs memory and CPU)",
  },
  maxConnections: {
    flag: "max-connections",
    env: "MAX_CONNECTIONS",
    def: 0,
    schema: int(0, 100_000_000),
    doc: "connections per host (those the primary is reading + those open in workers, as they report each second); beyond it new ones get 503; 0 = unlimited",
  },
  maxConnectionsPerIp: {
    flag: "max-connections-per-ip",
    env: "MAX_CONNECTIONS_PER_IP",
    def: 0,
    schema: int(0, 100_000_000),
    doc: "connections one remote address may have in the primary at once (sending its request head); beyond it 503; 0 = unlimited (keep 0 behind a proxy)",
  },
  acceptRate: {
    flag: "accept-rate",
    env: "ACCEPT_RATE",
    def: 0,
    schema: int(0, 1_000_000),
    doc: "new WebSocket / Socket.IO connections per second per host (burst: one second's worth); beyond it 503 with a jittered Retry-After; 0 = off",
  },
  headerTimeoutMs: {
    flag: "header-timeout",
    env: "HEADER_TIMEOUT_MS",
    def: 10_000,
    schema: int(100, 600_000),
    doc: "ms a new connection has to send its whole request head (not extended by bytes); then 408 and closed",
  },
  workerUnresponsiveMs: {
    flag: "worker-unresponsive",
    env: "WORKER_UNRESPONSIVE_MS",
    def: 3000,
    schema: int(500, 600_000),
    doc: "ms a worker may leave the IPC heartbeat unanswered before it gets no new connections and its IPC is held (bounded)",
  },
  workerHangTimeoutMs: {
    flag: "worker-hang-timeout",
    env: "WORKER_HANG_TIMEOUT_MS",
    def: 10_000,
    schema: int(1000, 3_600_000),
    doc: "ms of silence after which a worker is killed (SIGKILL) and replaced; at least --worker-unresponsive + 1 s",
  },
} as const satisfies Record<
  string,
  { flag: string; env: string; def: unknown; schema: z.ZodType; doc: string }
>;

type Settings = typeof settings;
export type Config = { readonly [K in keyof Settings]: z.output<Settings[K]["schema"]> } & {
  readonly configFile: string | null;
};

export type Sources = {
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  file?: string | null;
};

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.problems = problems;
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError([
      `--config (SWITCHBOARD_CONFIG) = "${path}": cannot read file (${(err as Error).message})`,
    ]);
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {}
  throw new ConfigError([`--config (SWITCHBOARD_CONFIG) = "${path}": expected a JSON object of settings`]);
}

/** Resolves flag > environment > file > default, validates every key, and returns a frozen Config or throws every problem at once. */
export function loadConfig(sources: Sources): Config {
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const configFile = (flags.config as string | undefined) ?? env.SWITCHBOARD_CONFIG ?? sources.file ?? null;
  const file = configFile ? readConfigFile(configFile) : {};
  const problems: string[] = [];
  const known = new Set(Object.keys(settings));
  for (const key of Object.keys(file)) {
    if (!known.has(key))
      problems.push(`${configFile}: unknown key "${key}"; allowed: ${[...known].join(", ")}`);
  }
  const out: Record<string, unknown> = { configFile };
  for (const [key, s] of Object.entries(settings)) {
    const flagValue = flags[camel(s.flag)];
    const envValue = env[s.env];
    const raw =
      flagValue !== undefined
        ? flagValue
        : envValue !== undefined && envValue !== ""
          ? envValue
          : key in file
            ? file[key]
            : s.def;
    const result = (s.schema as z.ZodType).safeParse(raw);
    if (result.success) out[key] = result.data;
    else {
      const why = result.error.issues.map(describeIssue).join("; ");
      problems.push(`--${s.flag} (${s.env}) = ${JSON.stringify(raw)}: ${why}`);
    }
  }
  if (out.redisCluster && !out.redis)
    problems.push("--redis-cluster (REDIS_CLUSTER) = true: needs --redis with the cluster's seed URLs");
  if (typeof out.redis === "string") {
    const urls = out.redis.split(",");
    for (const url of urls) {
      if (!/^rediss?:\/\/[^\s]+$/.test(url.trim()))
        problems.push(`--redis (REDIS_URL) = "${url}": expected redis://host:port or rediss://…`);
      else if (out.redisCluster && !/^rediss?:\/\/[^/]+\/?$/.test(url.trim()))
        problems.push(
          `--redis (REDIS_URL) = "${url}": a Redis Cluster has no database number; drop the /path`,
        );
      else if (!/^rediss?:\/\/[^/]+(\/\d*)?$/.test(url.trim()))
        problems.push(
          `--redis (REDIS_URL) = "${url}": the path is the database number, e.g. redis://host:6379/2`,
        );
    }
    if (urls.length > 1 && !out.redisCluster)
      problems.push(
        `--redis (REDIS_URL) = "${out.redis}": several URLs are cluster seeds; add --redis-cluster`,
      );
  }
  readSecretFiles(out, problems);
  if (typeof out.adminHost === "string" && !isLoopbackHost(out.adminHost) && !out.adminPassword)
    problems.push(
      `--admin-host (ADMIN_HOST) = "${out.adminHost}": the admin port shows and controls the whole instance; keep it on 127.0.0.1 or set --admin-password`,
    );
  if (out.jwtSecret && out.jwtPublicKey)
    problems.push("--jwt-secret (JWT_SECRET) and --jwt-public-key (JWT_PUBLIC_KEY): set one, not both");
  if (problems.length > 0) throw new ConfigError(problems);
  if (out.workers === 0) out.workers = availableParallelism();
  return Object.freeze(out) as Config;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host.startsWith("127.");
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** One validation problem, with the path inside the value (namespaces.chat.historySize) when there is one. */
function describeIssue(issue: z.core.$ZodIssue): string {
  // A record key that fails its own check reports "Invalid key in record"; its own message says what is allowed.
  const nested = issue.code === "invalid_key" ? issue.issues[0]?.message : undefined;
  const message = nested ?? issue.message;
  return issue.path.length > 0 ? `${issue.path.join(".")}: ${message}` : message;
}

/** Secrets that may come from a file instead of a flag or variable (which `ps` and /proc show). */
const SECRET_FILES = [
  ["apiKeyFile", "apiKey"],
  ["jwtSecretFile", "jwtSecret"],
  ["jwtPublicKeyFile", "jwtPublicKey"],
  ["hookSecretFile", "hookSecret"],
  ["adminPasswordFile", "adminPassword"],
] as const;

/** Reads each `--…-file` into its setting (trailing newline dropped); one problem per unreadable or doubled one. */
function readSecretFiles(out: Record<string, unknown>, problems: string[]): void {
  for (const [fileKey, key] of SECRET_FILES) {
    const path = out[fileKey];
    if (typeof path !== "string") continue;
    const file = settings[fileKey];
    const direct = settings[key];
    if (out[key]) {
      problems.push(`--${file.flag} (${file.env}) and --${direct.flag} (${direct.env}): set one, not both`);
      continue;
    }
    try {
      const value = readFileSync(path, "utf8").replace(/\r?\n$/, "");
      if (value === "") problems.push(`--${file.flag} (${file.env}) = "${path}": the file is empty`);
      else out[key] = value;
    } catch (err) {
      problems.push(`--${file.flag} (${file.env}) = "${path}": cannot read it (${(err as Error).message})`);
    }
  }
}
