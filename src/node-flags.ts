/**
 * V8 flags Switchboard runs with (npm start, the bin, pm2, systemd, and every worker). V8 grows a process's
 * young generation to 2 x 16 MiB under any sustained allocation, such as a connection storm: RSS that holds no
 * connection. 2 MiB semi-spaces keep scavenges cheap and leave that memory to connections.
 */
export const NODE_FLAGS = ["--max-semi-space-size=2"];

/** The parent's node flags plus ours, unless the operator already chose (node flags or NODE_OPTIONS). */
export function withNodeFlags(execArgv: string[], nodeOptions = ""): string[] {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)];
  const missing = NODE_FLAGS.filter((flag) => !given.some((g) => g.startsWith(flag.split("=")[0] as string)));
  return [...execArgv, ...missing];
}
