/**
 * Full-jitter exponential backoff: a random delay between 0 and min(maxMs, minMs × 2^attempt), attempt 0 on the
 * first retry. Full jitter spreads clients that lost the same server over the whole window, so they do not come
 * back in waves. Pure: `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt));
  return random() * ceiling;
}

/** backoffDelay with its bounds bound: the delay for an attempt. */
export function backoffFor(minMs: number, maxMs: number, random: () => number): (attempt: number) => number {
  return (attempt) => backoffDelay(attempt, minMs, maxMs, random);
}
