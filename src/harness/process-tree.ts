import { readdirSync, readFileSync } from "node:fs";

/** True while a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The parent pid of every process, from /proc (Linux). */
function parents(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    } catch {
      continue;
    }
    // comm (field 2) may contain spaces and parentheses: the fields after the last ')' are fixed.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  return children;
}

/** `rootPid` and every live descendant, parents first. */
export function treePids(rootPid: number): number[] {
  const children = parents();
  const out: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0 && out.length < 10_000) {
    const pid = queue.shift() as number;
    out.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  return out.filter(isAlive);
}

/** Every live descendant of `pid` (not `pid` itself): what must be gone once a process tree was stopped. */
export function descendants(pid: number): number[] {
  return treePids(pid).filter((p) => p !== pid);
}

/** SIGKILL to each pid still alive (by pid: only processes the caller started). */
export function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}
