/**
 * Bench flags → a frozen BenchConfig. Every problem is reported at once, naming the flag.
 */
import { availableParallelism } from "node:os";

export const SCENARIOS = ["A", "B", "C", "D", "E", "F", "G", "H"] as const;
export type ScenarioId = (typeof SCENARIOS)[number];
export const SERVERS = ["switchboard", "baseline", "ws"] as const;
export type ServerName = (typeof SERVERS)[number];
/** How progress lines and reports name each server. */
export const SERVER_LABEL: Record<ServerName, string> = {
  switchboard: "Switchboard",
  baseline: "Socket.IO recipe",
  ws: "ws server",
};
export type SourceMode = "auto" | "dist" | "ts";

export interface BenchConfig {
  scenarios: ScenarioId[];
  servers: ServerName[];
  /** Protocols to drive on Switchboard ("ws" raw, "sio" Socket.IO); the others speak only one each. */
  protocols: ("ws" | "sio")[];
  /** Connections for A, B, C and D. */
  connections: number;
  /** Channels for D (subscribers per channel = connections / channels). */
  channels: number;
  /** Seconds per publish-rate step (C, D) and for the publish run (E). */
  durationS: number;
  /** Publish rates (messages/s) stepped through in C and D. */
  ratesC: number[];
  ratesD: number[];
  /**
   * Rate at which C and D report their reference latency (the "p99 at 5 msgs/s"); when no step has
   * exactly this rate, the highest step rate below it (or the first step) stands in.
   */
  refRateC: number;
  refRateD: number;
  /** C publishes batches (the messages due in one 10 ms tick per request) instead of one message per request. */
  batchC: boolean;
  /** An admin page's live feed stays open on Switchboard during every run (what watching the page costs). */
  adminFeed: boolean;
  /** Consecutive unsustained steps after which a C/D run stops stepping up. */
  stopAfterFail: number;
  workers: number;
  scaleConnections: number;
  scaleWorkers: number;
  /** Handshakes in flight at once, over all client processes. */
  concurrency: number;
  clientProcesses: number;
  /** Keep-alive connections for E. */
  publishConnections: number;
  /** SDK clients in H (recovery across a promote), and its publish rate (messages/s, one per request). */
  recoveryClients: number;
  recoveryRate: number;
  settleMs: number;
  /**
   * A's pause before reading RSS with the connections open: long enough for V8's memory reducer (which runs
   * after some seconds of low allocation) to return the handshake storm's garbage, so RSS is the idle state.
   */
  idleSettleMs: number;
  outDir: string;
  smoke: boolean;
  source: SourceMode;
  switchboardArgs: string[];
  /** Where Switchboard's processes write CPU profiles (--cpu-prof), or null. */
  cpuProfDir: string | null;
}

const DEFAULTS: BenchConfig = {
  scenarios: ["A", "B", "C", "D", "E"],
  servers: [...SERVERS],
  protocols: ["ws", "sio"],
  connections: 10_000,
  channels: 1_000,
  durationS: 3,
  // Steps grow by ~1.5× where the servers under test are expected to break, so the limits resolve finely.
  ratesC: [1, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 1000],
  ratesD: [500, 1000, 2000, 3000, 4500, 7000, 10_000, 15_000, 22_000, 33_000, 50_000],
  refRateC: 5,
  refRateD: 1000,
  batchC: false,
  adminFeed: false,
  stopAfterFail: 1,
  workers: availableParallelism(),
  scaleConnections: 100_000,
  scaleWorkers: 6,
  concurrency: 500,
  clientProcesses: 2,
  publishConnections: 16,
  recoveryClients: 1000,
  recoveryRate: 50,
  settleMs: 2000,
  idleSettleMs: 30_000,
  outDir: "bench-results",
  smoke: false,
  source: "auto",
  switchboardArgs: [],
  cpuProfDir: null,
};

const SMOKE: Partial<BenchConfig> = {
  connections: 50,
  channels: 5,
  durationS: 0.5,
  ratesC: [2, 10],
  ratesD: [20, 100],
  refRateD: 20,
  scaleConnections: 200,
  scaleWorkers: 2,
  concurrency: 50,
  publishConnections: 4,
  recoveryClients: 50,
  settleMs: 200,
  idleSettleMs: 200,
  // One worker and one client process: the smoke run checks that everything works, cheaply.
  workers: 1,
  clientProcesses: 1,
};

export const USAGE = `Usage: bench [flags]
  --scenarios A,B,C,D,E[,F,G,H] scenarios to run (F, the 100k scale run, is opt-in) default A,B,C,D,E
                              (G, cross-host via a local redis-server, is opt-in)
                              (H, recovery across a blue/green promote via redis-server, is opt-in)
  --servers LIST              switchboard,baseline,ws                               default all three
  --protocols LIST            Switchboard protocols to drive: ws,sio                default ws,sio
  --connections N             connections for A–D                                   default 10000
  --channels N                channels for D                                        default 1000
  --duration S                seconds per rate step (C, D) and for E                default 3
  --rates LIST / --rates-d LIST   publish rates (msgs/s) stepped in C / D
  --workers N                 workers for Switchboard and the recipe                default cores
  --scale-connections N       connections for F                                     default 100000
  --scale-workers N           Switchboard workers for F                             default 6
  --concurrency N             handshakes in flight                                  default 500
  --client-processes N        minimum load-client processes                         default 2
  --batch-c                   C publishes batches per 10 ms tick, not one message per request
  --admin-feed                keep the admin page's live feed (/feed on the admin port) open on Switchboard
  --stop-after-fail N         stop stepping after N unsustained steps               default 1
  --recovery-clients N        SDK clients for H                                     default 1000
  --recovery-rate R           publishes per second during H's promote               default 50
  --out DIR                   results directory                                     default bench-results
  --source auto|dist|ts       run servers from dist/ or TypeScript (auto: dist when fresh)
  --switchboard-args "…"      extra flags for \`switchboard start\`
  --cpu-prof DIR              Switchboard's primary and workers write V8 CPU profiles to DIR
  --smoke                     tiny sizes, seconds per scenario
  --help`;

export class BenchConfigError extends Error {}

function list(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Parses argv (without node and script) into a frozen config; throws BenchConfigError listing every problem. */
export function parseBenchArgs(argv: string[]): BenchConfig {
  const problems: string[] = [];
  const smoke = argv.includes("--smoke");
  const cfg: BenchConfig = { ...DEFAULTS, ...(smoke ? SMOKE : {}), smoke };
  const int = (flag: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) problems.push(`${flag}: expected an integer ≥ ${min}, got "${v}"`);
    return n;
  };
  const rates = (flag: string, v: string): number[] => {
    const out = list(v).map(Number);
    if (out.length === 0 || out.some((n) => !(n > 0)))
      problems.push(`${flag}: expected positive numbers, got "${v}"`);
    return out;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i] as string;
    if (flag === "--smoke") continue;
    if (flag === "--batch-c") {
      cfg.batchC = true;
      continue;
    }
    if (flag === "--admin-feed") {
      cfg.adminFeed = true;
      continue;
    }
    if (flag === "--help" || flag === "-h") throw new BenchConfigError(USAGE);
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith("--") && flag !== "--switchboard-args")) {
      problems.push(`${flag}: unknown flag or missing value`);
      continue;
    }
    i++;
    switch (flag) {
      case "--scenarios": {
        const s = list(v.toUpperCase());
        const bad = s.filter((x) => !(SCENARIOS as readonly string[]).includes(x));
        if (bad.length)
          problems.push(`--scenarios: unknown ${bad.join(",")}; allowed ${SCENARIOS.join(",")}`);
        cfg.scenarios = SCENARIOS.filter((x) => s.includes(x));
        break;
      }
      case "--servers": {
        const s = list(v);
        const bad = s.filter((x) => !(SERVERS as readonly string[]).includes(x));
        if (bad.length) problems.push(`--servers: unknown ${bad.join(",")}; allowed ${SERVERS.join(",")}`);
        cfg.servers = SERVERS.filter((x) => s.includes(x));
        break;
      }
      case "--protocols": {
        const s = list(v);
        if (s.some((x) => x !== "ws" && x !== "sio"))
          problems.push(`--protocols: allowed ws,sio, got "${v}"`);
        cfg.protocols = (["ws", "sio"] as const).filter((x) => s.includes(x));
        break;
      }
      case "--connections":
        cfg.connections = int(flag, v, 1);
        break;
      case "--channels":
        cfg.channels = int(flag, v, 1);
        break;
      case "--duration":
        cfg.durationS = Number(v);
        if (!(cfg.durationS > 0)) problems.push(`--duration: expected seconds > 0, got "${v}"`);
        break;
      case "--rates":
        cfg.ratesC = rates(flag, v);
        break;
      case "--rates-d":
        cfg.ratesD = rates(flag, v);
        break;
      case "--workers":
        cfg.workers = int(flag, v, 1);
        break;
      case "--scale-connections":
        cfg.scaleConnections = int(flag, v, 1);
        break;
      case "--scale-workers":
        cfg.scaleWorkers = int(flag, v, 1);
        break;
      case "--concurrency":
        cfg.concurrency = int(flag, v, 1);
        break;
      case "--client-processes":
        cfg.clientProcesses = int(flag, v, 1);
        break;
      case "--stop-after-fail":
        cfg.stopAfterFail = int(flag, v, 1);
        break;
      case "--recovery-clients":
        cfg.recoveryClients = int(flag, v, 1);
        break;
      case "--recovery-rate":
        cfg.recoveryRate = Number(v);
        if (!(cfg.recoveryRate > 0 && cfg.recoveryRate <= 1000))
          problems.push(`--recovery-rate: expected messages/s in (0, 1000], got "${v}"`);
        break;
      case "--out":
        cfg.outDir = v;
        break;
      case "--source":
        if (v !== "auto" && v !== "dist" && v !== "ts")
          problems.push(`--source: allowed auto, dist, ts; got "${v}"`);
        cfg.source = v as SourceMode;
        break;
      case "--cpu-prof":
        cfg.cpuProfDir = v;
        break;
      case "--switchboard-args":
        cfg.switchboardArgs = v.split(/\s+/).filter(Boolean);
        break;
      default:
        problems.push(`${flag}: unknown flag`);
    }
  }
  if (cfg.scenarios.length === 0) problems.push("--scenarios: nothing to run");
  if (cfg.servers.length === 0) problems.push("--servers: nothing to run");
  if (cfg.protocols.length === 0) problems.push("--protocols: nothing to run");
  if (cfg.channels > cfg.connections)
    problems.push(`--channels: ${cfg.channels} channels need ≥ as many connections`);
  if (problems.length > 0) throw new BenchConfigError(problems.join("\n"));
  return Object.freeze(cfg);
}
