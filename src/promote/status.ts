import { COLOURS } from "./colours.js";
import { EXIT_OK } from "./errors.js";
import { activeColour, readStates, serverKey } from "./haproxy-colours.js";
import type { PromoteOptions } from "./options.js";
import { step } from "./progress.js";
import { describeServer } from "./servers-state.js";

/** --status: both colours on every HAProxy, then which one serves. */
export async function status(opts: PromoteOptions): Promise<number> {
  const states = await readStates(opts);
  for (const { socket, colours } of states) {
    for (const colour of COLOURS)
      step(`${socket}: ${serverKey(opts, colour)} ${describeServer(colours[colour])}`);
  }
  step(`active colour: ${activeColour(states) ?? "unclear (both or neither ready)"}`);
  return EXIT_OK;
}
