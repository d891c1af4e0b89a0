/**
 * Undoing a failed promote (steps 1-6): every server back to its recorded admin state, the target stopped.
 */
import type { ColourManager } from "./colour-manager.js";
import { type Colour, otherColour } from "./colours.js";
import { messageOf } from "./errors.js";
import { type SocketState, serverKey, serverName } from "./haproxy-colours.js";
import { runtimeSet } from "./haproxy-runtime.js";
import type { PromoteOptions } from "./options.js";
import { step } from "./progress.js";
import { waitPortClosed } from "./readiness.js";
import { type AdminVerb, adminVerb } from "./servers-state.js";

/**
 * Puts every server back to its admin state in `before` and stops `target` if it was started; never throws.
 *
 * In this order, so that no connection is cut: the other colour first (it takes new connections again before the
 * target stops taking them); a started target only to drain, since it may already hold connections (step 6 may
 * have made it ready on some HAProxy); then it is stopped (its drain moves its clients) and, once its port is
 * closed, set to the state it had (usually maint).
 */
export async function restore(
  opts: PromoteOptions,
  before: SocketState[],
  manager: ColourManager,
  target: Colour,
  stopTarget: boolean,
): Promise<void> {
  step("rolling back: restoring the previous HAProxy state");
  let clean = true;
  // Each server on its own: one refusal must not leave the others in the new state.
  const set = async (socket: string, colour: Colour, verb: AdminVerb, note = "") => {
    try {
      await runtimeSet(socket, `set server ${serverKey(opts, colour)} state ${verb}`);
      step(`${socket}: ${serverName(opts, colour)} → ${verb}${note}`);
    } catch (err) {
      clean = false;
      step(`could not restore ${serverName(opts, colour)} on ${socket}: ${messageOf(err)}`);
    }
  };
  const verbOf = (colours: SocketState["colours"], colour: Colour) => adminVerb(colours[colour].admin);
  const other = otherColour(target);
  for (const { socket, colours } of before) {
    await set(socket, other, verbOf(colours, other));
    if (stopTarget) await set(socket, target, "drain", " (until it has stopped)");
    else await set(socket, target, verbOf(colours, target));
  }
  if (stopTarget) {
    step(`stopping ${target}`);
    let result: string;
    try {
      result = await manager.stop(target);
    } catch (err) {
      clean = false;
      result = "stop command failed";
      step(`could not stop ${target}: ${messageOf(err)}`);
    }
    const port = opts.ports[target];
    if (await waitPortClosed(opts.checkHost, port, opts.stopTimeoutMs)) {
      step(`${target} ${result}; port ${port} closed`);
      for (const { socket, colours } of before) {
        const verb = verbOf(colours, target);
        if (verb !== "drain") await set(socket, target, verb);
      }
    } else {
      clean = false;
      step(
        `warning: ${target} ${result}, but port ${port} still accepts connections after ` +
          `${opts.stopTimeoutMs} ms: it stays in drain`,
      );
    }
  }
  step(
    clean
      ? "rolled back: the previous colour keeps serving"
      : "rollback incomplete, check the messages above",
  );
}
