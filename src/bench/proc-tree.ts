/**
 * Resident memory and CPU time of a process and all of its descendants, read from /proc (Linux only).
 */
import { readFileSync } from "node:fs";
import { treePids } from "../harness/process-tree.js";

const PAGE_BYTES = 4096;
const CLOCK_TICKS_PER_S = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "latin1");
    // comm (field 2) may contain spaces and parentheses: parse after the last ')'.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const ppid = Number(rest[1]);
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { pid, ppid, cpuTicks: utime + stime };
  } catch {
    return undefined;
  }
}

function readRssBytes(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/statm`, "latin1").split(" ");
    return Number(fields[1]) * PAGE_BYTES;
  } catch {
    return 0;
  }
}

/** A process's proportional set size: its private pages plus its share of pages other processes map too. */
function readPssBytes(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "latin1"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Sum of PSS (bytes) over the tree: what the tree costs the machine. A sum of RSS counts the pages every process
 * shares (Node's own code, ~40 MiB) once per process.
 */
export function treePssBytes(rootPid: number): number {
  let sum = 0;
  for (const pid of treePids(rootPid)) sum += readPssBytes(pid);
  return sum;
}

/** Sum of RSS (bytes) over the tree rooted at `rootPid`. */
export function treeRssBytes(rootPid: number): number {
  let sum = 0;
  for (const pid of treePids(rootPid)) sum += readRssBytes(pid);
  return sum;
}

/** Sum of user+system CPU time (ms) over the tree rooted at `rootPid` (live processes only). */
export function treeCpuMs(rootPid: number): number {
  let ticks = 0;
  for (const pid of treePids(rootPid)) ticks += readStat(pid)?.cpuTicks ?? 0;
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** CPU time (ms) the whole machine spent busy since boot, over all cores (from the first line of /proc/stat). */
export function machineBusyMs(): number {
  try {
    const line = readFileSync("/proc/stat", "latin1").split("\n", 1)[0] ?? "";
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return (busy * 1000) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}
