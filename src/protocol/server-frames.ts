import type { Gap, Published } from "../bus/bus.js";
import type { ErrorCode } from "../errors.js";
import type { RequestId } from "./client-message.js";

/**
 * Server → client frames as JSON text. `data` arrives already serialized (it crossed IPC as JSON),
 * so a message frame is spliced together instead of re-encoding the payload.
 */
export function messageText(channelJson: string, dataJson: string, offset: number): string {
  return `{"type":"message","channel":${channelJson},"data":${dataJson},"offset":${offset}}`;
}

/** An ack, with what the request's answer carries (a subscribe's position, a publish's offset). */
export function ackText(id: RequestId | undefined, extra?: Record<string, unknown>): string | null {
  return id === undefined ? null : JSON.stringify({ type: "ack", id, ...extra });
}

export function pongText(id: RequestId | undefined): string {
  return JSON.stringify(id === undefined ? { type: "pong" } : { type: "pong", id });
}

export function errorText(
  code: ErrorCode,
  message: string,
  id?: RequestId,
  extra?: Record<string, unknown>,
): string {
  return JSON.stringify({ type: "error", ...(id === undefined ? {} : { id }), code, message, ...extra });
}

/** An rpc call's answer: the backend's data. */
export function rpcText(id: RequestId | undefined, data: unknown): string {
  return JSON.stringify(id === undefined ? { type: "rpc", data } : { type: "rpc", id, data });
}

/** The server ends the connection (a close with `code` follows); `reconnect: false` asks the client to stay away. */
export function disconnectText(code: number, reason: string, reconnect: boolean): string {
  return JSON.stringify({ type: "disconnect", code, reason, reconnect });
}

export function reconnectText(delayMs: number, reason: string): string {
  return JSON.stringify({ type: "reconnect", delayMs, reason });
}

/**
 * One unmasked, final WebSocket text frame (RFC 6455 §5.2). Server frames carry no mask, so the same bytes
 * can be written to every subscriber of a channel.
 */
export function encodeTextFrame(text: string): Buffer {
  const payloadLength = Buffer.byteLength(text);
  const headerLength = payloadLength < 126 ? 2 : payloadLength < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLength + payloadLength);
  frame[0] = 0x81;
  if (payloadLength < 126) {
    frame[1] = payloadLength;
  } else if (payloadLength < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(payloadLength, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(payloadLength), 2);
  }
  frame.write(text, headerLength, "utf8");
  return frame;
}

/** What a history_gap frame says besides its code and message (docs/protocol.md). */
export function gapFields(channel: string, offset: number, epoch: string, gap: Gap): Record<string, unknown> {
  return { channel, offset, epoch, reason: gap.reason };
}

/** The unsolicited gap: messages of a channel could not reach this connection. */
export function lostGap(offset: number): Gap {
  return {
    reason: "messages_lost",
    message: `messages of this channel may not have reached this connection; its position is now offset ${offset}`,
  };
}

/** What a publish's answer carries, on every path (raw ack, Socket.IO ack, HTTP): `duplicate` only when true. */
export function publishedFields(r: Published): { offset: number; epoch: string; duplicate?: true } {
  return r.duplicate
    ? { offset: r.offset, epoch: r.epoch, duplicate: true }
    : { offset: r.offset, epoch: r.epoch };
}
