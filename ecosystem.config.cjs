// pm2 process file for Switchboard: `pm2 start ecosystem.config.cjs --only switchboard-blue`.
//
// Switchboard's primary process forks and supervises its own workers (sticky
// connection hand-off, rolling reload, drain), so pm2 runs it in *fork* mode,
// one instance per app. pm2's cluster mode would run our entry inside Node
// cluster workers, where it could never act as the primary.
//
// Every value below can be overridden from the environment of the shell that
// runs `pm2 start` (docs/deploy.md, and the tests use free ports this way):
//   SWITCHBOARD_PORT / SWITCHBOARD_ADMIN_PORT            plain app      (8080 / 9090)
//   SWITCHBOARD_BLUE_PORT / SWITCHBOARD_BLUE_ADMIN_PORT  switchboard-blue  (8001 / 9001)
//   SWITCHBOARD_GREEN_PORT / SWITCHBOARD_GREEN_ADMIN_PORT switchboard-green (8002 / 9002)
//   SWITCHBOARD_DIR, SWITCHBOARD_BLUE_DIR, SWITCHBOARD_GREEN_DIR  release directory
//     (holds dist/cli.js; default: this file's directory). Pointing each colour
//     at its own release is what makes `scripts/promote --rollback` return to
//     the previous code.
//   DRAIN_TIMEOUT_MS (30000)         kill_timeout is derived from it
//   SWITCHBOARD_LISTEN_TIMEOUT_MS (60000)  longest wait for the `ready` message
// Anything else the server reads (REDIS_URL, WORKERS, API_KEY, LOG_LEVEL, ...)
// is passed through from that shell's environment by pm2 itself.
"use strict";

const path = require("node:path");

const env = process.env;

/** Integer from the environment, or the default when unset/empty. */
function intFromEnv(name, def) {
  const raw = env[name];
  if (raw === undefined || raw === "") return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name}=${JSON.stringify(raw)}: expected a non-negative integer`);
  return n;
}

const drainTimeoutMs = intFromEnv("DRAIN_TIMEOUT_MS", 30000);
const listenTimeoutMs = intFromEnv("SWITCHBOARD_LISTEN_TIMEOUT_MS", 60000);
const defaultDir = env.SWITCHBOARD_DIR || __dirname;

function app({ name, dir, port, adminPort, instance }) {
  return {
    name,
    script: path.join(dir, "dist", "cli.js"),
    args: "start",
    // Keeps each process's V8 young generation small (see src/node-flags.ts).
    node_args: "--max-semi-space-size=2",
    cwd: dir,
    // One primary per app; it forks the workers itself.
    exec_mode: "fork",
    instances: 1,
    // pm2 marks the app `online` only when the primary sends process.send('ready')
    // (all workers listening). listen_timeout bounds that wait; past it pm2
    // marks the app online anyway, so keep it above a slow cold start.
    wait_ready: true,
    listen_timeout: listenTimeoutMs,
    // pm2 stops with SIGINT; Switchboard drains on it (reconnect frames paced
    // over the drain window) and exits 0 before DRAIN_TIMEOUT_MS. Only past
    // kill_timeout does pm2 send SIGKILL, so leave headroom over the drain.
    kill_timeout: drainTimeoutMs + 15000,
    // Signal only the primary: it stops its workers in order. Killing the whole
    // tree would cut every worker's connections at once instead of draining.
    treekill: false,
    // Exit code 2 = invalid configuration: restarting cannot fix it.
    stop_exit_codes: [2],
    autorestart: true,
    exp_backoff_restart_delay: 200,
    max_restarts: 20,
    min_uptime: 5000,
    // The server logs pino JSON; pm2 adds no prefix so lines stay parseable.
    merge_logs: true,
    time: false,
    env: {
      NODE_ENV: "production",
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      INSTANCE: instance,
      DRAIN_TIMEOUT_MS: String(drainTimeoutMs),
    },
  };
}

module.exports = {
  apps: [
    app({
      name: "switchboard",
      dir: defaultDir,
      port: intFromEnv("SWITCHBOARD_PORT", 8080),
      adminPort: intFromEnv("SWITCHBOARD_ADMIN_PORT", 9090),
      instance: "default",
    }),
    app({
      name: "switchboard-blue",
      dir: env.SWITCHBOARD_BLUE_DIR || defaultDir,
      port: intFromEnv("SWITCHBOARD_BLUE_PORT", 8001),
      adminPort: intFromEnv("SWITCHBOARD_BLUE_ADMIN_PORT", 9001),
      instance: "blue",
    }),
    app({
      name: "switchboard-green",
      dir: env.SWITCHBOARD_GREEN_DIR || defaultDir,
      port: intFromEnv("SWITCHBOARD_GREEN_PORT", 8002),
      adminPort: intFromEnv("SWITCHBOARD_GREEN_ADMIN_PORT", 9002),
      instance: "green",
    }),
  ],
};
