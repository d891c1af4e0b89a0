/**
 * Command-line helpers shared by the two comparison servers: flag reading and the ready line.
 */

/** Logs the ready line every server under test prints (a pino-like JSON line on stdout). */
export function logReady(port: number, workers: number): void {
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: "ready", port, workers })}\n`,
  );
}

/** Reads `--name value` from argv. */
export function argValue(argv: string[], name: string, fallback: string): string {
  const i = argv.indexOf(name);
  const v = i >= 0 ? argv[i + 1] : undefined;
  return v ?? fallback;
}
