/**
 * The publish API as the two comparison servers implement it: read a POST body and turn
 * `{"channel","data"}` or `{"messages":[…]}` into a list of messages.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export interface PublishItem {
  channel: string;
  data: unknown;
}

const MAX_BODY_BYTES = 1024 * 1024;

function toItem(value: unknown): PublishItem | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const rec = value as Record<string, unknown>;
  if (typeof rec.channel !== "string" || rec.channel.length === 0 || !("data" in rec)) return undefined;
  return { channel: rec.channel, data: rec.data };
}

/** Parses a publish body; undefined when malformed. */
export function parsePublishBody(text: string): PublishItem[] | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null) return undefined;
  const messages = (body as Record<string, unknown>).messages;
  if (Array.isArray(messages)) {
    const items: PublishItem[] = [];
    for (const m of messages) {
      const item = toItem(m);
      if (!item) return undefined;
      items.push(item);
    }
    return items;
  }
  const one = toItem(body);
  return one ? [one] : undefined;
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Handles `POST /api/publish`: calls `publish` per message (it returns the message's offset)
 * and answers `{"ok":true,"offset":n}` (the last offset for a batch).
 */
export function handlePublish(
  req: IncomingMessage,
  res: ServerResponse,
  publish: (item: PublishItem) => number,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on("end", () => {
    if (size > MAX_BODY_BYTES) {
      reply(res, 413, { error: { code: "too_large", message: "body too large" } });
      return;
    }
    const items = parsePublishBody(Buffer.concat(chunks).toString("utf8"));
    if (!items) {
      reply(res, 400, { error: { code: "bad_request", message: "expected {channel,data} or {messages}" } });
      return;
    }
    let offset = 0;
    for (const item of items) offset = publish(item);
    reply(res, 200, { ok: true, offset });
  });
}
