/** Exit codes: the deploy guide and the tests rely on them. */
export const EXIT_OK = 0;
/** Something failed; during steps 1-6 every server was put back first. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Bad flags or environment: reported without a progress line, exit 2. */
export class UsageError extends Error {}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
