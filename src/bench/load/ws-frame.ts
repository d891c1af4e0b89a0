/**
 * Minimal RFC 6455 framing for the load client: masked client frames out, unmasked server frames in.
 * No extensions are negotiated, so frames are never compressed; fragmented messages are not expected from the
 * servers under test and are reported as their individual frames.
 */
import { randomBytes } from "node:crypto";

export const OP_TEXT = 0x1;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

const MASK = randomBytes(4);

/** Encodes one final, masked client frame (RFC 6455 §5.3: every client frame is masked). */
export function encodeClientFrame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const headerLen = len < 126 ? 6 : len < 65536 ? 8 : 14;
  const out = Buffer.allocUnsafe(headerLen + len);
  out[0] = 0x80 | opcode;
  if (len < 126) {
    out[1] = 0x80 | len;
  } else if (len < 65536) {
    out[1] = 0x80 | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 0x80 | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  MASK.copy(out, headerLen - 4);
  for (let i = 0; i < len; i++) out[headerLen + i] = (payload[i] as number) ^ (MASK[i & 3] as number);
  return out;
}

export function encodeClientText(text: string): Buffer {
  return encodeClientFrame(OP_TEXT, Buffer.from(text, "utf8"));
}

export interface FrameSink {
  /** Called per complete server frame; the payload is `buf[start, end)` and is only valid during the call. */
  onFrame(opcode: number, buf: Buffer, start: number, end: number): void;
}

/**
 * Parses server frames from `chunk[0, length)`, after the carried-over `pending` bytes. Returns a copy of an
 * incomplete trailing frame (or undefined), to be passed back in with the next chunk: the chunk itself may be a
 * shared read buffer that the next read overwrites.
 */
export function readFrames(
  pending: Buffer | undefined,
  chunk: Buffer,
  length: number,
  sink: FrameSink,
): Buffer | undefined {
  const buf = pending ? Buffer.concat([pending, chunk.subarray(0, length)]) : chunk;
  const total = pending ? buf.length : length;
  let pos = 0;
  while (total - pos >= 2) {
    const b0 = buf[pos] as number;
    const b1 = buf[pos + 1] as number;
    let len = b1 & 0x7f;
    let header = 2;
    if (len === 126) {
      if (total - pos < 4) break;
      len = buf.readUInt16BE(pos + 2);
      header = 4;
    } else if (len === 127) {
      if (total - pos < 10) break;
      len = buf.readUInt32BE(pos + 2) * 2 ** 32 + buf.readUInt32BE(pos + 6);
      header = 10;
    }
    // Server frames must not be masked (RFC 6455 §5.1); tolerate it anyway by skipping the key.
    if (b1 & 0x80) header += 4;
    if (total - pos < header + len) break;
    sink.onFrame(b0 & 0x0f, buf, pos + header, pos + header + len);
    pos += header + len;
  }
  if (pos >= total) return undefined;
  return Buffer.from(buf.subarray(pos, total));
}
