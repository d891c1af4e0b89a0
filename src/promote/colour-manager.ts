import type { Colour } from "./colours.js";

/** Starts and stops one colour's Switchboard: pm2, systemd or the operator's own commands. */
export interface ColourManager {
  /** Shown in the first progress line. */
  readonly name: string;
  /** Resolves once the colour's primary reported ready, where the manager can tell. */
  start(colour: Colour): Promise<void>;
  /** Stops the colour (it drains first) and says how it ended, e.g. "exited with code 0". */
  stop(colour: Colour): Promise<string>;
  /** After a switch: what must hold for the next boot. */
  finish(active: Colour, idle: Colour): void;
}
