/**
 * The one table of errors a client, an operator or a test can observe.
 * `http` is the status on the publish API; `close` is the WebSocket close code when the error ends a connection
 * (null: the connection stays open and gets an error frame). README.md repeats this table; a test keeps them in step.
 */
export const errorCodes = {
  bad_request: {
    http: 400,
    close: null,
    doc: "The frame or body is not valid JSON or misses a required field.",
  },
  unknown_type: {
    http: 400,
    close: null,
    doc: "The frame's `type` is not one of subscribe, unsubscribe, publish, refresh, rpc, ping.",
  },
  invalid_channel: {
    http: 400,
    close: null,
    doc: "The channel name is empty, too long or has characters outside `A-Z a-z 0-9 _ - : . @ / =`.",
  },
  unauthorized: {
    http: 401,
    close: null,
    doc: "A token or API key is required and is missing, invalid or expired.",
  },
  token_expired: {
    http: 401,
    close: 4001,
    doc: "The connection's token expired and was not refreshed in time (raw `refresh` frame, Socket.IO `refresh` event); reconnect with a new one.",
  },
  forbidden: {
    http: 403,
    close: null,
    doc: "Not allowed: client publish outside the allowed namespaces, a channel the token does not grant, or a wrong API key.",
  },
  too_large: {
    http: 413,
    close: 1009,
    doc: "Frame or message over `--max-payload`; the connection stays open unless the frame is over 4x that.",
  },
  rate_limited: {
    http: 429,
    close: null,
    doc: "More client frames per second than `--client-rate`; the frame was dropped.",
  },
  too_many_subscriptions: {
    http: 400,
    close: null,
    doc: "The connection already has `--max-subscriptions` channels.",
  },
  history_gap: {
    http: 200,
    close: null,
    doc: "A resume (`since`) could not be served in full (`reason`: epoch_mismatch, history_trimmed, offset_ahead, history_unavailable), or, unasked, messages of a channel may not have reached the connection (messages_lost); the frame carries the channel's position, live messages follow.",
  },
  slow_consumer: {
    http: 503,
    close: 4008,
    doc: "The connection's socket held more than `--max-buffered` unsent for over a second (or 4 times that at once); it is closed and counted.",
  },
  backend_unavailable: {
    http: 503,
    close: null,
    doc: "A backend hook did not answer in `--hook-timeout`, failed, or too many calls were in flight (`--hook-concurrency`); nothing was done: retry (the SDK does).",
  },
  unavailable: { http: 503, close: null, doc: "The server is starting or draining, or no worker is live." },
  not_found: { http: 404, close: null, doc: "No such HTTP route." },
  headers_too_large: { http: 431, close: null, doc: "The request's headers exceed 16 KiB." },
  request_timeout: {
    http: 408,
    close: null,
    doc: "A new connection did not send its whole request head within `--header-timeout`; it is closed.",
  },
  internal: { http: 500, close: 1011, doc: "An unexpected server fault; it is logged." },
} as const satisfies Record<string, { http: number; close: number | null; doc: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** Close code sent with the `reconnect` frame while draining (RFC 6455 §7.4.1 "service restart"). */
export const CLOSE_RESTART = 1012;

/**
 * Every WebSocket close code a client can get from the server on /ws, and why. README.md repeats this table; a
 * test keeps them in step and checks that the code closes with nothing else. A connection cut without a close
 * frame (a peer that stopped answering heartbeats, a slow consumer that did not read its close) shows as 1006.
 */
export const closeCodes = {
  1002: "A frame broke the WebSocket protocol (RFC 6455): checked by ws before anything else.",
  1007: "A text frame that is not valid UTF-8.",
  1009: "A frame over 4 × `--max-payload` (`too_large`).",
  1011: "An unexpected server fault while handling the frame (`internal`); it is logged.",
  1012: "The server drains or restarts: reconnect after the `reconnect` frame's `delayMs`.",
  4001: "The connection's token expired without a refresh (`token_expired`).",
  4008: "The connection could not keep up (`slow_consumer`).",
  4009: "The backend disconnected the connection (`POST /api/disconnect`, a connect hook's `disconnect`); the client may reconnect.",
  4010: "The backend disconnected the connection and asked it not to reconnect (`reconnect: false`).",
} as const satisfies Record<number, string>;

/** An error that carries a stable code, so it survives IPC and JSON as plain data. */
export class SwitchboardError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type ErrorBody = { error: { code: ErrorCode; message: string } };

/** An error as every answer carries it (HTTP bodies, refused upgrades, acks), with its status from the table. */
export function errorReply(code: ErrorCode, message: string): { status: number; body: ErrorBody } {
  return { status: errorCodes[code].http, body: { error: { code, message } } };
}
