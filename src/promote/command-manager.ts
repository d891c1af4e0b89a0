import type { ColourManager } from "./colour-manager.js";
import { type Colour, fillTemplate } from "./colours.js";
import { UsageError } from "./errors.js";
import type { PromoteOptions } from "./options.js";
import { runAsync } from "./run-command.js";

/** Colours started and stopped by the operator's shell commands (--start-cmd, --stop-cmd). */
export function commandManager(opts: Pick<PromoteOptions, "startCmd" | "stopCmd" | "ports">): ColourManager {
  const { startCmd, stopCmd } = opts;
  if (!startCmd || !stopCmd) throw new UsageError("--manager command needs --start-cmd and --stop-cmd");
  const exec = (template: string, colour: Colour) =>
    runAsync(fillTemplate(template, colour, opts.ports[colour]), [], {
      shell: true,
      env: { ...process.env, COLOUR: colour, PORT: String(opts.ports[colour]) },
    });
  return {
    name: "command",
    async start(colour) {
      await exec(startCmd, colour);
    },
    async stop(colour) {
      await exec(stopCmd, colour);
      return "stopped";
    },
    finish() {},
  };
}
