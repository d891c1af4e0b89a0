/**
 * The blue/green switch, steps 1-9 (see main.ts), and --rollback.
 */
import type { ColourManager } from "./colour-manager.js";
import { COLOURS, type Colour, otherColour } from "./colours.js";
import { EXIT_FAILED, EXIT_OK, EXIT_OLD_STILL_RUNNING, messageOf } from "./errors.js";
import { activeColour, readStates, serverName, serving, setState } from "./haproxy-colours.js";
import type { PromoteOptions } from "./options.js";
import { pickManager } from "./pick-manager.js";
import { step } from "./progress.js";
import { waitForReady, waitHaproxyUp, waitPortClosed } from "./readiness.js";
import { restore } from "./restore.js";
import { adminVerb, describeServer } from "./servers-state.js";
import { smokeTest } from "./smoke-test.js";
import { saveState } from "./state-file.js";

/** Where a failure happened, for the FAILED line. */
type Phase = "prepare" | "start" | "switch";

/** --rollback: promotes the colour that is not serving now. */
export async function rollback(opts: PromoteOptions): Promise<number> {
  const active = activeColour(await readStates(opts));
  if (!active) {
    throw new Error(
      "cannot tell which colour is active (both or neither ready); name one: promote blue|green",
    );
  }
  const target = otherColour(active);
  step(`rollback: ${active} is active, promoting ${target}`);
  return promote(opts, target);
}

/** Switches HAProxy's traffic to `target` and retires the other colour; the exit code. */
export async function promote(opts: PromoteOptions, target: Colour): Promise<number> {
  const old = otherColour(target);
  const manager = pickManager(opts);
  step(
    `promote ${target} (port ${opts.ports[target]}), retire ${old} (port ${opts.ports[old]}); manager: ${manager.name}`,
  );
  step(`HAProxy runtime sockets: ${opts.sockets.join(", ")}; backend ${opts.backend}`);

  const before = await readStates(opts);
  for (const { socket, colours } of before) {
    step(
      `${socket}: ${COLOURS.map((c) => `${serverName(opts, c)}=${describeServer(colours[c])}`).join(" ")}`,
    );
  }
  const oldRetired = before.every(({ colours }) => adminVerb(colours[old].admin) === "maint");
  if (serving(before, target) && oldRetired) {
    step(`${target} is already the active colour and ${old} is in maint: nothing to do`);
    return EXIT_OK;
  }

  let phase: Phase = "prepare";
  let startedTarget = false;
  try {
    if (serving(before, target)) {
      // Restarting a colour that carries traffic would cut it off: keep it and only retire the other one.
      step(`1-5/9 ${target} already serves on every HAProxy: no restart, no smoke test`);
    } else {
      await startAndCheck(opts, manager, target, () => {
        phase = "start";
        startedTarget = true;
      });
    }
    phase = "switch";
    step(`6/9 HAProxy: ${target} → ready, ${old} → drain`);
    await setState(opts, target, "ready");
    await setState(opts, old, "drain");
  } catch (err) {
    step(`FAILED during ${phase}: ${messageOf(err)}`);
    await restore(opts, before, manager, target, startedTarget);
    return EXIT_FAILED;
  }

  const retired = await retire(opts, manager, old);
  manager.finish(target, old);

  step("9/9 saving HAProxy server state");
  await saveState(opts);
  if (!retired) {
    step(
      `done, but not retired: ${target} is active, ${old} still runs in drain; once it has stopped, ` +
        `run "scripts/promote ${target}" again to put it in maint`,
    );
    return EXIT_OLD_STILL_RUNNING;
  }
  step(`done: ${target} is active, ${old} is stopped (roll back with: scripts/promote --rollback)`);
  return EXIT_OK;
}

/** Steps 1-5: fence the target off in HAProxy, start it, wait until it is ready and UP, smoke-test it. */
async function startAndCheck(
  opts: PromoteOptions,
  manager: ColourManager,
  target: Colour,
  /** Called just before the manager starts the target: from then on a failure must stop it again. */
  onStarting: () => void,
): Promise<void> {
  step(`1/9 ${target}: HAProxy state drain (no regular traffic until it passed the smoke test)`);
  await setState(opts, target, "drain");

  onStarting();
  step(`2/9 starting ${target}`);
  await manager.start(target);

  const host = opts.checkHost.includes(":") ? `[${opts.checkHost}]` : opts.checkHost;
  const readyUrl = `http://${host}:${opts.ports[target]}/ready`;
  step(`3/9 waiting for ${readyUrl} (up to ${opts.readyTimeoutMs} ms)`);
  await waitForReady(readyUrl, opts.readyTimeoutMs);

  step(`4/9 waiting for every HAProxy to see ${target} UP`);
  await waitHaproxyUp(opts, target);

  step(`5/9 smoke test of ${target} through HAProxy`);
  await smokeTest(opts, target);
}

/**
 * Steps 7-8: stop the old colour and fence it off for good; false when it is still running. Its traffic already
 * moved, so there is no rolling back from here: a stop that fails or hangs is only reported.
 *
 * The old colour is in drain: HAProxy sends it nothing new, but what it still holds keeps flowing, among it the
 * requests of Socket.IO long-polling sessions, which follow its cookie only while it is in drain. So `maint` comes
 * only once its port is closed (its own drain moved every client, with a `reconnect` frame or a transport close);
 * if it still accepts connections after --stop-timeout it stays in drain.
 */
async function retire(opts: PromoteOptions, manager: ColourManager, old: Colour): Promise<boolean> {
  step(`7/9 stopping ${old}: it drains (clients get "reconnect" with jitter) and exits`);
  let result: string;
  try {
    result = await manager.stop(old);
  } catch (err) {
    step(`warning: stopping ${old} reported: ${messageOf(err)}`);
    result = "stop command failed";
  }
  const port = opts.ports[old];
  const closed = await waitPortClosed(opts.checkHost, port, opts.stopTimeoutMs);
  if (!closed) {
    step(
      `warning: ${old} ${result}, but port ${port} still accepts connections after ${opts.stopTimeoutMs} ms`,
    );
    step(`8/9 skipped: ${old} stays in drain (maint now would cut the clients it still serves)`);
    return false;
  }
  step(`${old} ${result}; port ${port} closed`);
  step(`8/9 HAProxy: ${old} → maint`);
  await setState(opts, old, "maint");
  return true;
}
