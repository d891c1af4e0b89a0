#!/usr/bin/env -S node --max-semi-space-size=2
import cluster from "node:cluster";
import { Command } from "commander";
import { parseRedisTarget } from "./bus/redis/redis-options.js";
import { type Config, ConfigError, loadConfig, settings } from "./config.js";
import { IPC_TAG, isSwitchboardMessage, type ToPrimary, type ToWorker } from "./ipc.js";
import { DEFAULT_ADMIN_URL } from "./status/defaults.js";

/** Exit code for invalid configuration (systemd: RestartPreventExitStatus=2). */
const EXIT_CONFIG = 2;

function withSettings(cmd: Command): Command {
  cmd.option("--config <file>", "JSON config file (env SWITCHBOARD_CONFIG)");
  for (const s of Object.values(settings)) {
    const def = s.def === null ? "none" : String(s.def);
    const arg = typeof s.def === "boolean" ? `--${s.flag} [bool]` : `--${s.flag} <value>`;
    cmd.option(arg, `${s.doc} (env ${s.env}, default ${def})`);
  }
  return cmd;
}

function configFrom(flags: Record<string, unknown>): Config {
  try {
    return loadConfig({ flags, env: process.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`config error: ${problem}\n`);
    process.exit(EXIT_CONFIG);
  }
}

/** A worker's configuration, asked of the primary over IPC (secrets never sit in a worker's environment). */
function configFromPrimary(): Promise<Config> {
  return new Promise((resolve) => {
    const onMessage = (message: unknown) => {
      if (!isSwitchboardMessage<ToWorker>(message) || message.kind !== "config") return;
      process.off("message", onMessage);
      resolve(message.config);
    };
    process.on("message", onMessage);
    process.send?.({ tag: IPC_TAG, kind: "hello" } satisfies ToPrimary);
  });
}

async function main(): Promise<void> {
  if (cluster.isWorker) {
    const [{ runWorker }, config] = await Promise.all([import("./worker/index.js"), configFromPrimary()]);
    runWorker(config, cluster.worker?.id ?? 0);
    return;
  }
  const program = new Command("switchboard").description("Realtime messaging server").showHelpAfterError();
  withSettings(program.command("start").description("start the server")).action(async (flags) => {
    const config = configFrom(flags);
    const { runPrimary } = await import("./primary/index.js");
    await runPrimary(config).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") {
        process.stderr.write(
          `start error: cannot listen (${err.message}); choose another --port / --admin-port\n`,
        );
        process.exit(EXIT_CONFIG);
      }
      throw err;
    });
  });
  withSettings(program.command("check-config").description("validate the configuration and exit")).action(
    (flags) => {
      const config = configFrom(flags);
      const shown = {
        ...config,
        redis: config.redis && parseRedisTarget(config.redis, config.redisCluster).display,
        apiKey: config.apiKey ? "***" : null,
        jwtSecret: config.jwtSecret ? "***" : null,
      };
      process.stdout.write(`config ok: ${JSON.stringify(shown)}\n`);
    },
  );
  program
    .command("status")
    .summary(
      "show a running server's workers, connections and totals (exit 0 ready, 1 degraded, 2 unreachable)",
    )
    .description(
      "show a running server's workers, connections and totals from its admin port (docs/monitoring.md); " +
        "exit 0 ready, 1 degraded, 2 unreachable or bad usage",
    )
    .option("--watch", "refresh in place every second until Ctrl-C (rates per second from two reads)")
    .option("--json", "print the /status JSON as is (with --watch: one line per second, NDJSON)")
    .option("--admin <url>", `the admin port's URL (env ADMIN_URL, default ${DEFAULT_ADMIN_URL})`)
    .option("--admin-password <password>", "the server's --admin-password (env ADMIN_PASSWORD)")
    .option("--admin-password-file <file>", "a file holding it (env ADMIN_PASSWORD_FILE)")
    // Bad usage exits 2 like an unreachable server (commander's own code is 1, which means "degraded" here).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(
      async (opts: {
        watch?: boolean;
        json?: boolean;
        admin?: string;
        adminPassword?: string;
        adminPasswordFile?: string;
      }) => {
        // Loaded on demand, like the bench.
        const { runStatus, passwordFrom } = await import("./status/command.js");
        const password = passwordFrom(opts.adminPassword, opts.adminPasswordFile, process.env);
        if (password instanceof Error) {
          process.stderr.write(`switchboard status: ${password.message}\n`);
          process.exitCode = 2;
          return;
        }
        process.exitCode = await runStatus({
          watch: opts.watch === true,
          json: opts.json === true,
          admin: opts.admin ?? process.env.ADMIN_URL ?? DEFAULT_ADMIN_URL,
          password,
        });
      },
    );
  program
    .command("bench")
    .description("run the benchmark (see README: Performance)")
    .allowUnknownOption()
    .helpOption(false)
    .argument("[args...]")
    .action(async (args: string[]) => {
      // Loaded on demand: `start` never pays for the bench's modules.
      const { runBench } = await import("./bench/main.js");
      process.exitCode = await runBench(args);
    });
  await program.parseAsync(process.argv);
}

void main();
