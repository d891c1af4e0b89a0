import type { ColourManager } from "./colour-manager.js";
import { type Colour, fillTemplate } from "./colours.js";
import type { PromoteOptions } from "./options.js";
import { runAsync, runSync } from "./run-command.js";

/** Colours as instances of the switchboard@.service template unit. */
export function systemdManager(opts: Pick<PromoteOptions, "unit" | "ports">): ColourManager {
  const unit = (colour: Colour) => fillTemplate(opts.unit, colour, opts.ports[colour]);
  return {
    name: "systemd",
    async start(colour) {
      // Type=notify: returns once the primary reported READY=1 (or the start failed).
      await runAsync("systemctl", ["restart", unit(colour)]);
    },
    async stop(colour) {
      await runAsync("systemctl", ["stop", unit(colour)]);
      const res = runSync("systemctl", ["show", unit(colour), "-p", "ExecMainStatus", "--value"], {
        allowFail: true,
      });
      return `exited with code ${res.stdout.trim() || "?"}`;
    },
    finish(active, idle) {
      // Boot into the active colour.
      runSync("systemctl", ["enable", unit(active)], { allowFail: true });
      runSync("systemctl", ["disable", unit(idle)], { allowFail: true });
    },
  };
}
