/**
 * The part of a WebSocket the SDK uses, typed so that both the browser's WebSocket and the `ws` package's class
 * fit without a cast. Handlers are properties (both implementations support them); their parameters are
 * checked bivariantly because each implementation declares its own event classes.
 */
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drops the TCP connection without a closing handshake (used for a dead link). */
  terminate?(): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<{ data: unknown }> | null;
  onclose: Handler<{ code: number; reason: string }> | null;
  onerror: Handler<unknown> | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** WebSocket.OPEN in both implementations. */
export const OPEN = 1;

/** The constructor to use: the one given, else the platform's (browsers, Deno, Node 22+; Node 20 has none). */
export function webSocketConstructor(given: WebSocketConstructor | undefined): WebSocketConstructor {
  const ctor = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!ctor) {
    throw new Error(
      'no WebSocket in this environment: pass one, e.g. new Switchboard(url, { WebSocket }) with `import { WebSocket } from "ws"`',
    );
  }
  return ctor;
}

function noop(): void {}

/**
 * Detaches the SDK from a socket it is done with and closes it: `graceful` with a closing handshake (the app
 * disconnects), otherwise dropped at once where the implementation can (a dead link has nobody to answer the
 * handshake). The error handler stays a no-op rather than null: `ws` throws an "error" event nobody listens to
 * (closing a socket that is still connecting emits one).
 */
export function abandon(ws: WebSocketLike, graceful: boolean): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = noop;
  try {
    if (!graceful && ws.terminate) ws.terminate();
    else ws.close(1000);
  } catch {
    // Already closed, or a browser refusing to close a socket that never opened: nothing left to release.
  }
}

/** A readable message from an error event (ws gives one; the browser's event has none). */
export function errorEventMessage(event: unknown): string {
  const message = (event as { message?: unknown } | null)?.message;
  return typeof message === "string" && message ? message : "WebSocket error";
}
