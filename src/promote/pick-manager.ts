import { existsSync } from "node:fs";
import type { ColourManager } from "./colour-manager.js";
import { fillTemplate } from "./colours.js";
import { commandManager } from "./command-manager.js";
import type { PromoteOptions } from "./options.js";
import { pm2Manager } from "./pm2-manager.js";
import { runSync } from "./run-command.js";
import { systemdManager } from "./systemd-manager.js";

/** --manager, or for "auto": command when --start-cmd is given, systemd when it runs and has the unit, else pm2. */
export function pickManager(opts: PromoteOptions): ColourManager {
  const kind = opts.manager === "auto" ? detectManager(opts) : opts.manager;
  if (kind === "pm2") return pm2Manager(opts);
  if (kind === "systemd") return systemdManager(opts);
  return commandManager(opts);
}

function detectManager(opts: PromoteOptions): "pm2" | "systemd" | "command" {
  if (opts.startCmd) return "command";
  const systemdRuns = existsSync("/run/systemd/system");
  const unitInstalled = () =>
    runSync("systemctl", ["cat", fillTemplate(opts.unit, "blue", opts.ports.blue)], { allowFail: true })
      .status === 0;
  return systemdRuns && unitInstalled() ? "systemd" : "pm2";
}
