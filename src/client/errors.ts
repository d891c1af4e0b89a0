/**
 * An error the SDK hands to the app: a server error code (README's error table) or one of the SDK's own:
 * `timeout` (a publish not acknowledged within publishTimeoutMs), `closed` (disconnect() was called),
 * `socket_error` (the WebSocket reported an error; a reconnect follows).
 */
export class SwitchboardClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "SwitchboardClientError";
    this.code = code;
  }
}

/** Server codes that describe a passing condition: the request is sent again after a backoff. */
const RETRYABLE = new Set(["unavailable", "rate_limited", "internal"]);

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
