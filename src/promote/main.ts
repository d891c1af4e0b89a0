/**
 * Blue/green switch for Switchboard behind HAProxy, run as `scripts/promote`. See `--help` and docs/deploy.md.
 *
 * promote green | promote blue | promote --rollback | promote --status | promote --save-state
 *
 * 0. take the lock file (--lock-file): one promote / --rollback at a time; another one running → exit 1,
 * 1. put the target colour in `drain` on every HAProxy (no regular traffic yet)
 * 2. start it (pm2, systemd or a command), 3. wait for its /ready,
 * 4. wait until every HAProxy's health check sees it UP,
 * 5. smoke-test it through every HAProxy (pinned to it by cookie): /ready, /health, a /ws ping,
 * 6. set it `ready` and the old colour `drain` on every HAProxy (drain: no new connections, existing ones stay),
 * 7. stop the old colour (its drain sends clients `reconnect` with jitter) and wait until its port is closed,
 * 8. only then set the old colour `maint` (still open after --stop-timeout: it stays in drain, exit 3),
 * 9. save `show servers state` to the state file(s).
 * A failure in steps 1-6 restores every server's previous admin state (the old colour first; a started target
 * stays in drain until it has stopped), stops the target and exits 1.
 *
 * It runs from the release's build (`npm run build` makes dist/promote/) on a production host where the dev
 * dependencies were pruned: at run time it needs only Node's own modules and `ws` from the release's node_modules.
 */
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, messageOf, UsageError } from "./errors.js";
import { acquireLock, type Lock, LockBusy } from "./lock.js";
import { type PromoteOptions, readOptions, USAGE } from "./options.js";
import { step } from "./progress.js";
import { promote, rollback } from "./promote.js";
import { saveState } from "./state-file.js";
import { status } from "./status.js";

async function main(): Promise<number> {
  let parsed: PromoteOptions | "help";
  try {
    parsed = readOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`promote: ${messageOf(err)}\n\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  if (parsed === "help") {
    process.stdout.write(`${USAGE}\n`);
    return EXIT_OK;
  }
  const opts = parsed;
  let lock: Lock | undefined;
  try {
    // --status and --save-state only read HAProxy (and rename a whole state file into place): no lock.
    if (opts.action.mode === "promote" || opts.action.mode === "rollback") {
      lock = acquireLock(opts.lockFile, (signal) =>
        step(`stopped by ${signal}: HAProxy and the colours stay as they are now (see promote --status)`),
      );
      if (lock.stale !== null) step(`took over the stale lock file ${lock.file} (${lock.stale})`);
    }
    return await run(opts);
  } catch (err) {
    if (err instanceof LockBusy) {
      step(`${err.message}: nothing was touched`);
      return EXIT_FAILED;
    }
    // A usage problem found late (e.g. --manager command without its commands): before anything was touched.
    if (err instanceof UsageError) {
      process.stderr.write(`promote: ${err.message}\n`);
      return EXIT_USAGE;
    }
    step(`FAILED: ${messageOf(err)}`);
    return EXIT_FAILED;
  } finally {
    lock?.release();
  }
}

/** The action itself (the lock, if it needs one, is held). */
async function run(opts: PromoteOptions): Promise<number> {
  switch (opts.action.mode) {
    case "status":
      return await status(opts);
    case "save-state":
      await saveState(opts);
      return EXIT_OK;
    case "rollback":
      return await rollback(opts);
    case "promote":
      return await promote(opts, opts.action.target);
  }
}

process.exitCode = await main();
