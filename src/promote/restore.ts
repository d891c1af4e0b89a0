/**
 * Undoing a failed promote (steps 1-6): every server back to its recorded admin state, the target stopped.
 */
import type { ColourManager } from "./colour-manager.js";
import { COLOURS, type Colour } from "./colours.js";
import { messageOf } from "./errors.js";
import { type SocketState, serverKey, serverName } from "./haproxy-colours.js";
import { runtimeSet } from "./haproxy-runtime.js";
import type { PromoteOptions } from "./options.js";
import { step } from "./progress.js";
import { adminVerb } from "./servers-state.js";

/** Puts every server back to its admin state in `before` and stops `target` if it was started; never throws. */
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
  for (const { socket, colours } of before) {
    for (const colour of COLOURS) {
      const verb = adminVerb(colours[colour].admin);
      try {
        await runtimeSet(socket, `set server ${serverKey(opts, colour)} state ${verb}`);
        step(`${socket}: ${serverName(opts, colour)} → ${verb}`);
      } catch (err) {
        clean = false;
        step(`could not restore ${serverName(opts, colour)} on ${socket}: ${messageOf(err)}`);
      }
    }
  }
  if (stopTarget) {
    step(`stopping ${target}`);
    try {
      step(`${target} ${await manager.stop(target)}`);
    } catch (err) {
      clean = false;
      step(`could not stop ${target}: ${messageOf(err)}`);
    }
  }
  step(
    clean
      ? "rolled back: the previous colour keeps serving"
      : "rollback incomplete, check the messages above",
  );
}
