/**
 * HAProxy's `show servers state` answer, and what its admin and operational state numbers mean.
 */

export interface ServerState {
  /** srv_op_state: 0 DOWN, 1 STARTING, 2 UP, 3 STOPPING. */
  op: number;
  /** srv_admin_state: a bit set, see the ADMIN_ constants. */
  admin: number;
}

/** The `set server … state` verbs promote uses. */
export type AdminVerb = "ready" | "drain" | "maint";

// srv_admin_state bits (HAProxy include/haproxy/server-t.h)
const ADMIN_FMAINT = 0x01; // forced maintenance (runtime API)
const ADMIN_CMAINT = 0x04; // `disabled` in the configuration
const ADMIN_FDRAIN = 0x08; // forced drain (runtime API)
/** srv_op_state of a server whose health check passes. */
export const OP_RUNNING = 2;

const OP_NAMES = ["DOWN", "STARTING", "UP", "STOPPING"];

/** Parses `show servers state [<backend>]` into "backend/server" → state. */
export function parseServersState(text: string): Map<string, ServerState> {
  const lines = text.split("\n");
  const header = lines.find((l) => l.startsWith("# "));
  // An error message instead of a table must not pass for "no servers".
  if (!header) throw new Error(`unexpected "show servers state" answer: ${text.trim().slice(0, 200)}`);
  const columns = header.slice(2).trim().split(/\s+/);
  const backendAt = columns.indexOf("be_name");
  const nameAt = columns.indexOf("srv_name");
  const opAt = columns.indexOf("srv_op_state");
  const adminAt = columns.indexOf("srv_admin_state");
  const servers = new Map<string, ServerState>();
  for (const line of lines) {
    // Skip the format version line ("1") and comments.
    if (line === "" || line.startsWith("#") || /^\d+$/.test(line.trim())) continue;
    const fields = line.trim().split(/\s+/);
    servers.set(`${fields[backendAt]}/${fields[nameAt]}`, {
      op: Number(fields[opAt]),
      admin: Number(fields[adminAt]),
    });
  }
  return servers;
}

/** The runtime API verb that restores an admin state. */
export function adminVerb(admin: number): AdminVerb {
  if (admin & (ADMIN_FMAINT | ADMIN_CMAINT)) return "maint";
  if (admin & ADMIN_FDRAIN) return "drain";
  return "ready";
}

/** "ready/UP", "drain/DOWN", "maint/op=7"… */
export function describeServer(state: ServerState): string {
  const op = OP_NAMES[state.op] ?? `op=${state.op}`;
  return `${adminVerb(state.admin)}/${op}`;
}
