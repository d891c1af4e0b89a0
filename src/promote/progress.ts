const startedAt = Date.now();

/** One progress line on stdout, stamped with the seconds since promote started: `[promote +  4.0s] …`. */
export function step(text: string): void {
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1).padStart(5);
  process.stdout.write(`[promote +${seconds}s] ${text}\n`);
}
