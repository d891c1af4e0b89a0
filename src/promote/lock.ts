/**
 * One promote at a time per host: a lock file created atomically (`open` with `wx`) that holds the pid of the
 * promote holding it. A lock whose pid is not running any more (a promote killed with SIGKILL, a reboot) is stale
 * and taken over. The lock is removed when promote exits: done, failed, or stopped by SIGINT, SIGTERM or SIGHUP.
 */
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { messageOf } from "./errors.js";

const LOCK_NAME = "switchboard-promote.lock";
/** A lock file without a pid yet is being written by a promote that is starting: younger than this, it holds. */
const STARTING_GRACE_MS = 10_000;
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/** /run/lock/switchboard-promote.lock where /run/lock is writable, else the same name in the temp directory. */
export function defaultLockFile(): string {
  try {
    accessSync("/run/lock", constants.W_OK | constants.X_OK);
    return path.join("/run/lock", LOCK_NAME);
  } catch {
    return path.join(os.tmpdir(), LOCK_NAME);
  }
}

/** The lock is held by another promote that is running (pid null: one that is starting, no pid written yet). */
export class LockBusy extends Error {
  constructor(
    readonly pid: number | null,
    readonly file: string,
  ) {
    super(
      pid === null
        ? `another promote is starting (lock file ${file} has no pid yet)`
        : `another promote (pid ${pid}) is running (lock file ${file})`,
    );
  }
}

export interface Lock {
  readonly file: string;
  /** Why a lock file found there was stale and taken over ("pid 123 is not running"), or null. */
  readonly stale: string | null;
  /** Removes the lock file if it is still ours; safe to call more than once. */
  release(): void;
}

/**
 * Takes the lock or throws: LockBusy when another promote holds it, an Error when the file cannot be created.
 * While held, SIGINT / SIGTERM / SIGHUP remove it and exit (128 + the signal number), as an untrapped signal would.
 */
export function acquireLock(file: string, onSignal: (signal: NodeJS.Signals) => void = () => {}): Lock {
  let stale: string | null = null;
  // A few attempts: the holder may release, or another promote may take over the same stale lock, in between.
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(file)) return held(file, stale, onSignal);
    const holder = readHolder(file);
    if (holder === null) continue; // released in between: try again
    const pid = holder.pid;
    if (pid !== null && pid !== process.pid && isRunning(pid)) throw new LockBusy(pid, file);
    if (pid === null && Date.now() - holder.mtimeMs < STARTING_GRACE_MS) throw new LockBusy(null, file);
    // Stale. Removed only if it is still the file just read (another promote may have taken it over already).
    if (readHolder(file)?.text === holder.text) removeIfPresent(file);
    stale =
      pid === null
        ? "it held no pid"
        : pid === process.pid
          ? `pid ${pid} is this promote's own, left by an earlier one`
          : `pid ${pid} is not running`;
  }
  throw new Error(`could not take the lock file ${file}: it keeps changing`);
}

/** Creates the lock file with our pid; false when it exists. */
function tryCreate(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, "wx", 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw new Error(`cannot create the lock file ${file} (give --lock-file): ${messageOf(err)}`);
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readHolder(file: string): { text: string; pid: number | null; mtimeMs: number } | null {
  try {
    const text = readFileSync(file, "utf8");
    const mtimeMs = statSync(file).mtimeMs;
    const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : null;
    return { text, pid: pid !== null && pid > 0 ? pid : null, mtimeMs };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new Error(`cannot read the lock file ${file}: ${messageOf(err)}`);
  }
}

/** True while a process with this pid exists (EPERM: it exists, but belongs to another user). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
}

function held(file: string, stale: string | null, onSignal: (signal: NodeJS.Signals) => void): Lock {
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    for (const s of SIGNALS) process.off(s, exitOnSignal);
    try {
      // Never remove a lock that is not ours any more (someone deleted ours and another promote took it).
      if (readHolder(file)?.pid === process.pid) removeIfPresent(file);
    } catch {
      // Exiting anyway: a lock left behind is stale (its pid is gone) and the next promote takes it over.
    }
  };
  const exitOnSignal = (signal: NodeJS.Signals) => {
    onSignal(signal);
    release();
    process.exit(128 + (os.constants.signals[signal] ?? 0));
  };
  process.on("exit", release);
  for (const s of SIGNALS) process.on(s, exitOnSignal);
  return { file, stale, release };
}
