/**
 * Running pm2, systemctl and the --start-cmd/--stop-cmd commands, their output kept for the error message.
 */
import { type SpawnSyncReturns, spawn, spawnSync } from "node:child_process";

/** Lines of a failed command's output worth showing. */
const TAIL_LINES = 15;

function tail(output: string): string {
  return output.trim().split("\n").slice(-TAIL_LINES).join("\n");
}

/** Runs a quick command to completion; throws when it cannot start, or exits non-zero unless `allowFail`. */
export function runSync(cmd: string, args: string[], { allowFail = false } = {}): SpawnSyncReturns<string> {
  const res = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (res.error) throw new Error(`${cmd}: ${res.error.message}`);
  if (res.status !== 0 && !allowFail) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${res.status}\n${tail(`${res.stdout ?? ""}${res.stderr ?? ""}`)}`,
    );
  }
  return res;
}

/** Runs a command asynchronously (pm2/systemctl may block for a long drain), echoing nothing; resolves its output. */
export function runAsync(
  cmd: string,
  args: string[],
  { shell = false, env = process.env }: { shell?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], shell, env });
    let out = "";
    const collect = (chunk: Buffer) => {
      out += chunk;
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", (err) => reject(new Error(`${cmd}: ${err.message}`)));
    child.on("exit", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${shell ? cmd : `${cmd} ${args.join(" ")}`} exited with ${code}\n${tail(out)}`));
    });
  });
}
