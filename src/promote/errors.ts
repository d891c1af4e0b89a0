/** Exit codes: the deploy guide and the tests rely on them. */
export const EXIT_OK = 0;
/**
 * Something failed; during steps 1-6 every server was put back first. Also: another promote holds the lock
 * (nothing was touched).
 */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/**
 * The switch was made (the new colour serves), but the old colour still accepted connections after --stop-timeout:
 * it was left in drain, not maint, so the clients it still has are not cut. Run the same promote again once it is
 * gone.
 */
export const EXIT_OLD_STILL_RUNNING = 3;

/** Bad flags or environment: reported without a progress line, exit 2. */
export class UsageError extends Error {}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
