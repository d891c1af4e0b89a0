/**
 * The two colours' servers in the backend, on every HAProxy: their names, reading and setting their state.
 */
import { COLOURS, type Colour, fillTemplate } from "./colours.js";
import { runtimeCommand, runtimeSet } from "./haproxy-runtime.js";
import type { PromoteOptions } from "./options.js";
import {
  type AdminVerb,
  adminVerb,
  OP_RUNNING,
  parseServersState,
  type ServerState,
} from "./servers-state.js";

type ServerNaming = Pick<PromoteOptions, "serverTemplate" | "ports">;
type BackendServers = ServerNaming & Pick<PromoteOptions, "backend">;
type Haproxies = BackendServers & Pick<PromoteOptions, "sockets">;

/** Both colours' servers as one HAProxy sees them. */
export interface SocketState {
  socket: string;
  colours: Record<Colour, ServerState>;
}

export function serverName(opts: ServerNaming, colour: Colour): string {
  return fillTemplate(opts.serverTemplate, colour, opts.ports[colour]);
}

/** "backend/server", as the runtime API names a server. */
export function serverKey(opts: BackendServers, colour: Colour): string {
  return `${opts.backend}/${serverName(opts, colour)}`;
}

/** Reads the backend's servers on one socket (every one of them, absent colours included). */
export async function readBackend(
  opts: Pick<PromoteOptions, "backend">,
  socket: string,
): Promise<Map<string, ServerState>> {
  return parseServersState(await runtimeCommand(socket, `show servers state ${opts.backend}`));
}

/** Both colours on every socket, in --socket order; throws when a HAProxy lacks either server. */
export async function readStates(opts: Haproxies): Promise<SocketState[]> {
  const out: SocketState[] = [];
  for (const socket of opts.sockets) {
    const servers = await readBackend(opts, socket);
    const find = (colour: Colour): ServerState => {
      const state = servers.get(serverKey(opts, colour));
      if (!state)
        throw new Error(`${socket}: backend "${opts.backend}" has no server "${serverName(opts, colour)}"`);
      return state;
    };
    out.push({ socket, colours: { blue: find("blue"), green: find("green") } });
  }
  return out;
}

/** `set server … state <verb>` for one colour on every socket, in order; stops at the first refusal. */
export async function setState(opts: Haproxies, colour: Colour, verb: AdminVerb): Promise<void> {
  for (const socket of opts.sockets)
    await runtimeSet(socket, `set server ${serverKey(opts, colour)} state ${verb}`);
}

/** True when `colour` takes regular traffic on every socket: admin state ready and health check UP. */
export function serving(states: SocketState[], colour: Colour): boolean {
  return states.every(
    ({ colours }) => adminVerb(colours[colour].admin) === "ready" && colours[colour].op === OP_RUNNING,
  );
}

/** The one colour that is serving, or null when both or neither are. */
export function activeColour(states: SocketState[]): Colour | null {
  const active = COLOURS.filter((c) => serving(states, c));
  return active.length === 1 ? (active[0] ?? null) : null;
}
