/**
 * promote's command line: flags, each falling back to an environment variable, then to a default; the usage text.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { COLOURS, type Colour, fillTemplate, isColour } from "./colours.js";
import { UsageError } from "./errors.js";
import { defaultLockFile } from "./lock.js";

/** The release directory (this file is <release>/dist/promote/options.js). */
const RELEASE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const USAGE = `usage: scripts/promote <blue|green> [options]
       scripts/promote --rollback [options]     promote the colour that is not active now
       scripts/promote --status [options]       show both colours on every HAProxy
       scripts/promote --save-state [options]   only write "show servers state" to the state file(s)

options (environment variable in brackets):
  --manager pm2|systemd|command   how colours are started/stopped [SWITCHBOARD_MANAGER]; default: systemd
                                  when the unit is installed and systemd runs, else pm2
  --blue-port N / --green-port N  public port of each colour [SWITCHBOARD_BLUE_PORT=8001, SWITCHBOARD_GREEN_PORT=8002]
  --check-host ADDR               where this host reaches the colours [SWITCHBOARD_CHECK_HOST=127.0.0.1]
  --haproxy-url URL               HAProxy frontend for the smoke test, repeatable [SWITCHBOARD_HAPROXY_URLS=http://127.0.0.1]
  --socket PATH|HOST:PORT         HAProxy runtime API (level admin), repeatable [SWITCHBOARD_HAPROXY_SOCKETS=/run/haproxy/admin.sock]
  --state-file PATH               server state file, one per --socket in order [SWITCHBOARD_HAPROXY_STATE_FILES=/var/lib/haproxy/server-state]
  --backend NAME                  HAProxy backend [SWITCHBOARD_HAPROXY_BACKEND=switchboard]
  --server TEMPLATE               HAProxy server name, {colour} replaced [SWITCHBOARD_HAPROXY_SERVER={colour}]
                                  (--backend and --server names: letters, digits, "-", "_", "." and ":" only)
  --cookie NAME                   persistence cookie; its value is the server name [SWITCHBOARD_HAPROXY_COOKIE=SERVERID]
  --ready-timeout MS              wait for /ready and for HAProxy to see it UP [SWITCHBOARD_READY_TIMEOUT_MS=60000]
  --stop-timeout MS               wait for the old colour to exit [SWITCHBOARD_STOP_TIMEOUT_MS=DRAIN_TIMEOUT_MS+15000];
                                  still running then: it stays in drain (not maint), exit 3
  --pm2 BIN                       pm2 executable [SWITCHBOARD_PM2; default node_modules/.bin/pm2, else pm2]
  --ecosystem FILE                pm2 process file [SWITCHBOARD_ECOSYSTEM=<release>/ecosystem.config.cjs]
  --pm2-app TEMPLATE              pm2 app name [SWITCHBOARD_PM2_APP=switchboard-{colour}]
  --unit TEMPLATE                 systemd unit [SWITCHBOARD_UNIT=switchboard@{colour}.service]
  --start-cmd CMD / --stop-cmd CMD  shell commands for --manager command; {colour} and {port} replaced
                                  [SWITCHBOARD_START_CMD, SWITCHBOARD_STOP_CMD]
  --lock-file PATH                one promote / --rollback at a time [SWITCHBOARD_PROMOTE_LOCK;
                                  default /run/lock/switchboard-promote.lock, else in the temp directory]
  -h, --help`;

/** What to do: switch to a colour, switch back, or only look at / save HAProxy's state. */
export type Action =
  | { mode: "promote"; target: Colour }
  | { mode: "rollback" }
  | { mode: "status" }
  | { mode: "save-state" };

const MANAGER_KINDS = ["auto", "pm2", "systemd", "command"] as const;
/** "auto": command when a start command is given, else systemd when the unit is installed, else pm2. */
export type ManagerKind = (typeof MANAGER_KINDS)[number];

export interface PromoteOptions {
  action: Action;
  manager: ManagerKind;
  ports: Record<Colour, number>;
  checkHost: string;
  haproxyUrls: string[];
  sockets: string[];
  /** stateFiles[i] is written from sockets[i]; there may be fewer (a remote HAProxy saves its own). */
  stateFiles: string[];
  backend: string;
  serverTemplate: string;
  cookie: string;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  pm2: string;
  ecosystem: string;
  pm2App: string;
  unit: string;
  startCmd: string | undefined;
  stopCmd: string | undefined;
  /** Held while a promote or --rollback runs (not by --status and --save-state). */
  lockFile: string;
}

type Env = Record<string, string | undefined>;

/** Reads flags, falling back to the environment, then to the defaults; "help" for -h/--help. */
export function readOptions(argv: string[], env: Env): PromoteOptions | "help" {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rollback: { type: "boolean" },
      status: { type: "boolean" },
      "save-state": { type: "boolean" },
      help: { type: "boolean", short: "h" },
      manager: { type: "string" },
      "blue-port": { type: "string" },
      "green-port": { type: "string" },
      "check-host": { type: "string" },
      "haproxy-url": { type: "string", multiple: true },
      socket: { type: "string", multiple: true },
      "state-file": { type: "string", multiple: true },
      backend: { type: "string" },
      server: { type: "string" },
      cookie: { type: "string" },
      "ready-timeout": { type: "string" },
      "stop-timeout": { type: "string" },
      pm2: { type: "string" },
      ecosystem: { type: "string" },
      "pm2-app": { type: "string" },
      unit: { type: "string" },
      "start-cmd": { type: "string" },
      "stop-cmd": { type: "string" },
      "lock-file": { type: "string" },
    },
  });
  type IntegerFlag = "blue-port" | "green-port" | "ready-timeout" | "stop-timeout";
  const integer = (flagName: IntegerFlag | undefined, envName: string, fallback: number): number => {
    const raw = (flagName ? values[flagName] : undefined) ?? env[envName];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      const name = flagName ? `--${flagName} (${envName})` : envName;
      throw new UsageError(`${name} = ${JSON.stringify(raw)}: expected a non-negative integer`);
    }
    return n;
  };
  const list = (flag: string[] | undefined, envName: string, fallback: string[]) =>
    listOption(flag, env[envName], fallback);

  // Parsed before --help is honoured: a bad number is reported even with --help.
  const drainMs = integer(undefined, "DRAIN_TIMEOUT_MS", 30000);
  const ports = {
    blue: integer("blue-port", "SWITCHBOARD_BLUE_PORT", 8001),
    green: integer("green-port", "SWITCHBOARD_GREEN_PORT", 8002),
  };
  const readyTimeoutMs = integer("ready-timeout", "SWITCHBOARD_READY_TIMEOUT_MS", 60000);
  const stopTimeoutMs = integer("stop-timeout", "SWITCHBOARD_STOP_TIMEOUT_MS", drainMs + 15000);
  if (values.help === true) return "help";

  const action = readAction(values, positionals);
  const manager = values.manager ?? env.SWITCHBOARD_MANAGER ?? "auto";
  if (!isManagerKind(manager)) {
    throw new UsageError(`--manager (SWITCHBOARD_MANAGER) = "${manager}": expected pm2, systemd or command`);
  }
  if (ports.blue === ports.green) throw new UsageError("--blue-port and --green-port must differ");
  const sockets = list(values.socket, "SWITCHBOARD_HAPROXY_SOCKETS", ["/run/haproxy/admin.sock"]);
  if (sockets.length === 0) throw new UsageError("no HAProxy runtime socket: give --socket");
  const stateFiles = list(values["state-file"], "SWITCHBOARD_HAPROXY_STATE_FILES", [
    "/var/lib/haproxy/server-state",
  ]);
  if (stateFiles.length > sockets.length) {
    throw new UsageError("more --state-file than --socket: state file N is written from socket N");
  }
  // Both go into runtime API commands, where ";" separates commands and a newline ends one.
  const backend = values.backend ?? env.SWITCHBOARD_HAPROXY_BACKEND ?? "switchboard";
  checkHaproxyName(`--backend (SWITCHBOARD_HAPROXY_BACKEND) = ${JSON.stringify(backend)}`, backend);
  const serverTemplate = values.server ?? env.SWITCHBOARD_HAPROXY_SERVER ?? "{colour}";
  for (const colour of COLOURS) {
    const name = fillTemplate(serverTemplate, colour, ports[colour]);
    const filled = name === serverTemplate ? "" : ` (${colour}: ${JSON.stringify(name)})`;
    checkHaproxyName(
      `--server (SWITCHBOARD_HAPROXY_SERVER) = ${JSON.stringify(serverTemplate)}${filled}`,
      name,
    );
  }
  return {
    action,
    manager,
    ports,
    checkHost: values["check-host"] ?? env.SWITCHBOARD_CHECK_HOST ?? "127.0.0.1",
    haproxyUrls: list(values["haproxy-url"], "SWITCHBOARD_HAPROXY_URLS", ["http://127.0.0.1"]),
    sockets,
    stateFiles,
    backend,
    serverTemplate,
    cookie: values.cookie ?? env.SWITCHBOARD_HAPROXY_COOKIE ?? "SERVERID",
    readyTimeoutMs,
    stopTimeoutMs,
    pm2: values.pm2 ?? env.SWITCHBOARD_PM2 ?? defaultPm2(),
    ecosystem:
      values.ecosystem ?? env.SWITCHBOARD_ECOSYSTEM ?? path.join(RELEASE_ROOT, "ecosystem.config.cjs"),
    pm2App: values["pm2-app"] ?? env.SWITCHBOARD_PM2_APP ?? "switchboard-{colour}",
    unit: values.unit ?? env.SWITCHBOARD_UNIT ?? "switchboard@{colour}.service",
    startCmd: values["start-cmd"] ?? env.SWITCHBOARD_START_CMD,
    stopCmd: values["stop-cmd"] ?? env.SWITCHBOARD_STOP_CMD,
    lockFile: values["lock-file"] || env.SWITCHBOARD_PROMOTE_LOCK || defaultLockFile(),
  };
}

/** HAProxy's own rule for proxy and server names (it refuses any other character in a configuration). */
const HAPROXY_NAME = /^[A-Za-z0-9_.:-]+$/;

/** The usage error, one line naming the flag and the rule, unless `name` is a valid HAProxy name. */
function checkHaproxyName(flag: string, name: string): void {
  if (!HAPROXY_NAME.test(name)) {
    throw new UsageError(`${flag}: a HAProxy name may contain only letters, digits, "-", "_", "." and ":"`);
  }
}

/** --status wins over --save-state, which wins over --rollback; otherwise the argument names the colour. */
function readAction(
  flags: { status?: boolean; "save-state"?: boolean; rollback?: boolean },
  positionals: string[],
): Action {
  const mode = flags.status
    ? "status"
    : flags["save-state"]
      ? "save-state"
      : flags.rollback
        ? "rollback"
        : null;
  if (mode === null) {
    const target = positionals[0];
    if (!isColour(target)) {
      throw new UsageError(
        `expected "blue", "green", --rollback, --status or --save-state, got ${JSON.stringify(target ?? "")}`,
      );
    }
    return { mode: "promote", target };
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  return { mode };
}

/** A repeatable flag, else a comma-separated variable; "" means "none" (e.g. --state-file '' for a remote HAProxy). */
function listOption(flag: string[] | undefined, fromEnv: string | undefined, fallback: string[]): string[] {
  if (flag && flag.length > 0) return flag.filter(Boolean);
  if (fromEnv === undefined) return fallback;
  return fromEnv
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function isManagerKind(value: string): value is ManagerKind {
  return (MANAGER_KINDS as readonly string[]).includes(value);
}

/** The release's own pm2 when it was installed with dev dependencies, else whatever pm2 is on PATH. */
function defaultPm2(): string {
  const local = path.join(RELEASE_ROOT, "node_modules", ".bin", "pm2");
  return existsSync(local) ? local : "pm2";
}
