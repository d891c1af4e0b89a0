import type { ColourManager } from "./colour-manager.js";
import { type Colour, fillTemplate } from "./colours.js";
import type { PromoteOptions } from "./options.js";
import { runAsync, runSync } from "./run-command.js";

/** The part of `pm2 jlist` promote reads. */
interface Pm2Process {
  name: string;
  pm2_env?: { exit_code?: number };
}

/** Colours as apps of the release's ecosystem.config.cjs. */
export function pm2Manager(
  opts: Pick<PromoteOptions, "pm2" | "pm2App" | "ecosystem" | "ports">,
): ColourManager {
  const app = (colour: Colour) => fillTemplate(opts.pm2App, colour, opts.ports[colour]);
  const list = (): Pm2Process[] => {
    const res = runSync(opts.pm2, ["jlist"]);
    // pm2 may print notices before the JSON.
    const start = res.stdout.indexOf("[");
    return JSON.parse(res.stdout.slice(start)) as Pm2Process[];
  };
  return {
    name: `pm2 (${opts.pm2})`,
    async start(colour) {
      // Forget a previous run of this colour so the process file (paths, env) is read afresh.
      runSync(opts.pm2, ["delete", app(colour)], { allowFail: true });
      // With wait_ready this returns once the primary sent 'ready' (or listen_timeout passed).
      await runAsync(opts.pm2, ["start", opts.ecosystem, "--only", app(colour)]);
    },
    async stop(colour) {
      if (!list().some((p) => p.name === app(colour))) return "not running under pm2";
      // pm2 sends SIGINT, waits up to kill_timeout; Switchboard drains and exits.
      await runAsync(opts.pm2, ["stop", app(colour)]);
      const code = list().find((p) => p.name === app(colour))?.pm2_env?.exit_code;
      runSync(opts.pm2, ["delete", app(colour)], { allowFail: true });
      return code === undefined ? "stopped" : `exited with code ${code}`;
    },
    finish() {},
  };
}
