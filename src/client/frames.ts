/**
 * Frames of the raw protocol on /ws as the SDK reads and writes them (docs/protocol.md). The server is trusted
 * to send well-formed frames; parsing only checks what the SDK branches on.
 */
export type RequestId = number;

export type SubscribeFrame = {
  type: "subscribe";
  channel: string;
  id: RequestId;
  since?: number;
  epoch?: string;
};

export type ClientFrame =
  | SubscribeFrame
  | { type: "unsubscribe"; channel: string; id: RequestId }
  | { type: "publish"; channel: string; data: unknown; id: RequestId; idempotencyKey: string }
  | { type: "refresh"; token: string; id: RequestId }
  | { type: "rpc"; method: string; data: unknown; id: RequestId }
  | { type: "ping"; id: RequestId };

export type AckFrame = {
  type: "ack";
  id?: RequestId;
  channel?: string;
  offset?: number;
  epoch?: string;
  recovered?: boolean;
  duplicate?: boolean;
  /** A refresh's answer: when the new token expires. */
  exp?: number;
};

export type ErrorFrame = {
  type: "error";
  id?: RequestId;
  code: string;
  message: string;
  channel?: string;
  offset?: number;
  epoch?: string;
  reason?: string;
  /** The backend's own code when a hook refused. */
  backendCode?: unknown;
};

/** The server ends the connection; with `reconnect: false` the client must not come back (close 4010 follows). */
export type DisconnectFrame = { type: "disconnect"; code: number; reason: string; reconnect: boolean };

export type ServerFrame =
  | AckFrame
  | ErrorFrame
  | { type: "message"; channel: string; data: unknown; offset?: number }
  | { type: "pong"; id?: RequestId }
  | { type: "reconnect"; delayMs: number; reason?: string }
  | { type: "rpc"; id?: RequestId; data: unknown }
  | { type: "join" | "leave"; channel: string; info: { client: string; user: string | null; info: unknown } }
  | { type: "unsubscribed"; channel: string; reason: string }
  | DisconnectFrame;

/** One text frame as a ServerFrame, or null when it is not JSON or of a type the SDK does not know. */
export function parseServerFrame(data: unknown): ServerFrame | null {
  let frame: unknown;
  try {
    frame = JSON.parse(typeof data === "string" ? data : String(data));
  } catch {
    return null;
  }
  if (typeof frame !== "object" || frame === null) return null;
  switch ((frame as { type?: unknown }).type) {
    case "ack":
    case "error":
    case "message":
    case "pong":
    case "reconnect":
    case "rpc":
    case "disconnect":
    case "join":
    case "leave":
    case "unsubscribed":
      return frame as ServerFrame;
    default:
      return null;
  }
}
