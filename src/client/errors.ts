/**
 * An error the SDK hands to the app: a server error code (README's error table) or one of the SDK's own:
 * `timeout` (a publish or rpc not answered in time), `closed` (disconnect() was called), `disconnected` (the
 * backend ended the connection and asked it not to reconnect), `connection_lost` (an rpc's connection dropped
 * before its answer), `socket_error` (the WebSocket reported an error; a reconnect follows). `backendCode`: the
 * backend's own code when a hook refused (code `forbidden`).
 */
export class SwitchboardClientError extends Error {
  readonly code: string;
  readonly backendCode: unknown;
  constructor(code: string, message: string, backendCode?: unknown) {
    super(message);
    this.name = "SwitchboardClientError";
    this.code = code;
    this.backendCode = backendCode;
  }
}

/** Server codes that describe a passing condition: the request is sent again after a backoff. */
const RETRYABLE = new Set(["unavailable", "rate_limited", "internal", "backend_unavailable"]);

export function isRetryable(code: string): boolean {
  return RETRYABLE.has(code);
}

export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
