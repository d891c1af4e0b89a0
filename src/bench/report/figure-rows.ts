/**
 * The rows of the results table: which figure of which run goes in each server's column, and the ratios.
 * The recipe speaks only Socket.IO and the ws server only raw WebSocket, so raw-WS rows compare Switchboard's
 * raw WS with the recipe's Socket.IO figure (marked †): what a user choosing between the two would get.
 */
import { type ScenarioId, SERVER_LABEL, type ServerName } from "../bench-config.js";
import { fmt, fmtRatio } from "../format.js";
import type { RunProtocol, RunResult } from "../results.js";

export interface FigureDef {
  key: string;
  label: string;
  unit: string;
  better: "lower" | "higher";
}

/** Every scenario's /health p99 (a balancer's check made while the load runs). */
const HEALTH: FigureDef = { key: "healthP99Ms", label: "/health p99 meanwhile", unit: "ms", better: "lower" };

const SCENARIO_FIGURES: Record<ScenarioId, FigureDef[]> = {
  A: [
    {
      key: "rssPerConnKiB",
      label: "RSS per idle connection, 1 channel each, settled",
      unit: "KiB",
      better: "lower",
    },
    {
      key: "rssPeakPerConnKiB",
      label: "RSS per connection, 1 channel each, peak",
      unit: "KiB",
      better: "lower",
    },
    {
      key: "rssPerConnManyKiB",
      label: "RSS per idle connection, 10 channels each, settled",
      unit: "KiB",
      better: "lower",
    },
    {
      key: "rssPeakPerConnManyKiB",
      label: "RSS per connection, 10 channels each, peak",
      unit: "KiB",
      better: "lower",
    },
    HEALTH,
  ],
  B: [{ key: "connPerSec", label: "connections opened per second", unit: "/s", better: "higher" }, HEALTH],
  C: fanoutFigures(),
  D: fanoutFigures(),
  E: [
    { key: "publishesPerSec", label: "publish API throughput", unit: "/s", better: "higher" },
    { key: "p99Ms", label: "publish request p99", unit: "ms", better: "lower" },
    HEALTH,
  ],
  F: [
    { key: "opened", label: "connections open", unit: "", better: "higher" },
    { key: "deliveredPct", label: "received the broadcast", unit: "%", better: "higher" },
    { key: "lastDeliveryMs", label: "broadcast reached the last one after", unit: "ms", better: "lower" },
    { key: "rssMiB", label: "server tree RSS", unit: "MiB", better: "lower" },
    { key: "pssMiB", label: "server tree PSS (shared pages counted once)", unit: "MiB", better: "lower" },
    { key: "rssPerConnKiB", label: "RSS per connection", unit: "KiB", better: "lower" },
    HEALTH,
  ],
  // G compares hosts, not servers: its own table (cross-host-table.ts).
  G: [],
  // H compares a resuming client with one that does not, across a promote: its own table (recovery-table.ts).
  H: [],
};

function fanoutFigures(): FigureDef[] {
  return [
    { key: "refP50Ms", label: "p50 latency at {ref} msgs/s", unit: "ms", better: "lower" },
    { key: "refP99Ms", label: "p99 latency at {ref} msgs/s", unit: "ms", better: "lower" },
    { key: "refMaxMs", label: "max latency at {ref} msgs/s", unit: "ms", better: "lower" },
    { key: "refDeliveredPct", label: "delivered at {ref} msgs/s", unit: "%", better: "higher" },
    { key: "sustainedRate", label: "highest sustained publish rate", unit: "msgs/s", better: "higher" },
    {
      key: "sustainedDeliveriesPerSec",
      label: "highest sustained deliveries/s",
      unit: "/s",
      better: "higher",
    },
    { key: "maxDeliveriesPerSec", label: "peak deliveries/s received", unit: "/s", better: "higher" },
    HEALTH,
  ];
}

export interface Cell {
  value: number | undefined;
  /** The value comes from the other protocol (the recipe's Socket.IO in a raw-WS row). */
  cross: boolean;
  /** The value is a lower bound (every rate tried was sustained). */
  atLeast: boolean;
}

export interface FigureRow {
  scenario: ScenarioId;
  protocol: RunProtocol;
  label: string;
  cells: Record<ServerName, Cell>;
  /** Switchboard ÷ recipe and Switchboard ÷ ws server. */
  vsBaseline: number | undefined;
  vsWs: number | undefined;
}

export const PROTOCOL_LABEL: Record<RunProtocol, string> = { ws: "raw WS", sio: "Socket.IO", http: "HTTP" };

export function findRun(
  runs: RunResult[],
  scenario: ScenarioId,
  server: ServerName,
  protocol: RunProtocol,
): RunResult | undefined {
  return runs.find((r) => r.scenario === scenario && r.server === server && r.protocol === protocol && r.ok);
}

export function figureOf(
  runs: RunResult[],
  scenario: ScenarioId,
  server: ServerName,
  protocol: RunProtocol,
  key: string,
): number | undefined {
  const v = findRun(runs, scenario, server, protocol)?.figures[key];
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function cell(
  runs: RunResult[],
  scenario: ScenarioId,
  server: ServerName,
  protocol: RunProtocol,
  key: string,
  cross: boolean,
): Cell {
  const value = figureOf(runs, scenario, server, protocol, key);
  const lowerBound = figureOf(runs, scenario, server, protocol, "sustainedIsLowerBound") === 1;
  return { value, cross, atLeast: lowerBound && key.startsWith("sustained") };
}

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || b === 0) return undefined;
  return a / b;
}

/** Every row for which at least one server has a value, in scenario order. */
export function buildRows(runs: RunResult[]): FigureRow[] {
  const rows: FigureRow[] = [];
  const scenarios = [...new Set(runs.map((r) => r.scenario))];
  for (const scenario of scenarios) {
    const protocols: RunProtocol[] = scenario === "E" ? ["http"] : scenario === "F" ? ["ws"] : ["ws", "sio"];
    for (const protocol of protocols) {
      for (const def of SCENARIO_FIGURES[scenario]) {
        const blProtocol: RunProtocol = protocol === "ws" ? "sio" : protocol;
        const cells: Record<ServerName, Cell> = {
          switchboard: cell(runs, scenario, "switchboard", protocol, def.key, false),
          baseline: cell(runs, scenario, "baseline", blProtocol, def.key, protocol === "ws"),
          ws:
            protocol === "sio"
              ? { value: undefined, cross: false, atLeast: false }
              : cell(runs, scenario, "ws", protocol, def.key, false),
        };
        if (Object.values(cells).every((c) => c.value === undefined)) continue;
        // A raw-WS row with only the recipe's (cross-protocol) value says nothing new.
        if (protocol === "ws" && cells.switchboard.value === undefined && cells.ws.value === undefined)
          continue;
        const ref =
          figureOf(runs, scenario, "switchboard", protocol, "refRate") ??
          figureOf(runs, scenario, "ws", protocol, "refRate");
        const batched =
          figureOf(runs, scenario, "switchboard", protocol, "batched") === 1 ? ", batched publishes" : "";
        const label = `${scenario} ${def.label.replace("{ref}", String(ref ?? "?"))}${batched}${def.unit ? ` (${def.unit})` : ""}`;
        rows.push({
          scenario,
          protocol,
          label,
          cells,
          vsBaseline: ratio(cells.switchboard.value, cells.baseline.value),
          vsWs: ratio(cells.switchboard.value, cells.ws.value),
        });
      }
    }
  }
  return rows;
}

/** Header of the figures table, in the order of figureRowCells. */
export const FIGURES_HEADER = [
  "figure",
  SERVER_LABEL.switchboard,
  SERVER_LABEL.baseline,
  SERVER_LABEL.ws,
  "SB ÷ recipe",
  "SB ÷ ws",
];

function formatCell(c: Cell): string {
  if (c.value === undefined) return "—";
  return `${c.atLeast ? "≥ " : ""}${fmt(c.value)}${c.cross ? " †" : ""}`;
}

/** One row of the figures table as text (not escaped for HTML). */
export function figureRowCells(r: FigureRow): string[] {
  return [
    `${r.label}${r.protocol === "http" ? "" : `, ${PROTOCOL_LABEL[r.protocol]}`}`,
    formatCell(r.cells.switchboard),
    formatCell(r.cells.baseline),
    formatCell(r.cells.ws),
    fmtRatio(r.vsBaseline),
    fmtRatio(r.vsWs),
  ];
}
