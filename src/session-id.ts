/**
 * Engine.IO session ids that name their worker ("w3-<random>"), shared by the worker that mints them and the
 * primary that routes by them.
 */

/** Matches the `sid` query parameter of a Socket.IO request target. */
export const SID_PARAM = /[?&]sid=([\w-]{1,80})(?:&|$)/;

/** The prefix of every session id created by worker `id` (cluster worker ids are positive integers). */
export function sessionPrefix(id: number): string {
  return `w${id}-`;
}

/** The worker id encoded in a session id, or undefined for a foreign id. */
export function workerOfSession(sid: string): number | undefined {
  const m = /^w(\d+)-/.exec(sid);
  return m ? Number(m[1]) : undefined;
}
