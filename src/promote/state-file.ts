/**
 * HAProxy's server-state-file: saved after a switch so a reload or restart of HAProxy keeps the colours' states.
 */
import { rename, writeFile } from "node:fs/promises";
import { runtimeCommand } from "./haproxy-runtime.js";
import type { PromoteOptions } from "./options.js";
import { step } from "./progress.js";
import { parseServersState } from "./servers-state.js";

/** Writes `show servers state` of socket N to state file N (a socket without a file is skipped). */
export async function saveState(opts: Pick<PromoteOptions, "sockets" | "stateFiles">): Promise<void> {
  for (const [i, socket] of opts.sockets.entries()) {
    const file = opts.stateFiles[i];
    if (file === undefined) break; // the sockets after the last --state-file (remote HAProxies) save their own
    const text = await runtimeCommand(socket, "show servers state");
    parseServersState(text); // refuse to write an error message into the state file
    // Written aside, then renamed: HAProxy never reads a half-written file.
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, text);
    await rename(tmp, file);
    step(`saved server state of ${socket} to ${file}`);
  }
}
