import { deserialize, serialize } from "node:v8";

/**
 * What Switchboard writes to Redis, in one place: key and channel names, the Lua scripts and the payloads.
 *
 * Names (prefix `switchboard` by default, `--redis-prefix`):
 *   `<prefix>:meta:{<channel>}`        hash     the channel's numbering: `e` epoch, `t` last offset, `r` run id of the
 *                                               Redis process that numbers it; a day without use
 *   `<prefix>:hist:{<channel>}`        stream   the channel's history: entry id `<offset>-1`, field `d` = data JSON;
 *                                               at most the namespace's historySize entries, for its historyTtlMs
 *   `<prefix>:idem:{<channel>}:<key>`  string   `<offset> <epoch>` of a publish with that idempotency key (the window)
 *   `<prefix>:msg:{<channel>}`         channel  the channel's messages: `<offset> <origin> <epoch> <data JSON>`
 *   `<prefix>:sio`                     channel  Socket.IO adapter traffic for every host: `<origin><v8 serialized message>`
 *   `<prefix>:sio:<origin>`            channel  Socket.IO adapter responses for one host
 * The `{channel}` hash tag puts everything of a channel in one slot, which Redis Cluster requires for the scripts
 * (they write the keys and SPUBLISH to the channel in one step).
 */

/** Length of an origin id: one per primary process, so each host recognises its own echoes. */
export const ORIGIN_LENGTH = 12;

/** How long a channel's numbering (epoch, last offset) survives without a publish or a join. */
export const META_TTL_MS = 24 * 60 * 60 * 1000;

export class RedisNames {
  readonly #meta: string;
  readonly #hist: string;
  readonly #idem: string;
  readonly #msg: string;
  readonly sio: string;
  constructor(prefix: string) {
    this.#meta = `${prefix}:meta:{`;
    this.#hist = `${prefix}:hist:{`;
    this.#idem = `${prefix}:idem:{`;
    this.#msg = `${prefix}:msg:{`;
    this.sio = `${prefix}:sio`;
  }
  metaKey(channel: string): string {
    return `${this.#meta}${channel}}`;
  }
  historyKey(channel: string): string {
    return `${this.#hist}${channel}}`;
  }
  idempotencyKey(channel: string, key: string): string {
    return `${this.#idem}${channel}}:${key}`;
  }
  messageChannel(channel: string): string {
    return `${this.#msg}${channel}}`;
  }
  /** The Switchboard channel of a Redis message channel, or null for anything else (Socket.IO channels). */
  channelOf(redisChannel: string): string | null {
    return redisChannel.startsWith(this.#msg) ? redisChannel.slice(this.#msg.length, -1) : null;
  }
  sioDirect(origin: string): string {
    return `${this.sio}:${origin}`;
  }
}

/**
 * Starts a new numbering when there is none, when the Redis process that numbers the channel is not the one that
 * last did (a replica took over after a failover, or Redis restarted: acknowledged writes may be gone, on every host
 * alike), or when it is the epoch this host knows but its last offset is below offsets this host has seen in it
 * (writes lost some other way): the old numbers would be handed out again. Raises the last offset to the floor (what
 * this host delivered), so its offsets never go back. Leaves `epoch`, `top` set. ARGV positions of known epoch, redis
 * floor, floor, new epoch and the node's run id ("" when INFO is not allowed: no check) are passed in.
 */
const NUMBERING = (known: number, redisFloor: number, floor: number, fresh: number, run: number) => `
local meta = redis.call('HMGET', KEYS[1], 'e', 't', 'r')
local epoch = meta[1]
local top = tonumber(meta[2]) or 0
local run = ARGV[${run}]
if not epoch or (run ~= '' and meta[3] and meta[3] ~= run) or (epoch == ARGV[${known}] and top < tonumber(ARGV[${redisFloor}])) then
  epoch = ARGV[${fresh}]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
if run ~= '' and meta[3] ~= run then redis.call('HSET', KEYS[1], 'r', run) end
local floor = tonumber(ARGV[${floor}])
if top < floor then top = floor end`;

/**
 * The publish script. The idempotency check, numbering, history (XADD with an explicit id, trimmed to the namespace's
 * size) and (S)PUBLISH run as one step, so per channel the order on the subscription is the order of the offsets and
 * history never disagrees with what was published. Returns `{"<offset> <epoch>", duplicate 0|1}`.
 * KEYS: meta, history, idempotency key (the meta key again when there is none).
 * ARGV: message channel, origin, data JSON, known epoch, redis floor, floor, new epoch, history size, history ttl ms,
 * meta ttl ms, idempotency window ms (0: no key), node run id.
 */
export function publishScript(sharded: boolean): string {
  return `
local window = tonumber(ARGV[11])
if window > 0 then
  local prior = redis.call('GET', KEYS[3])
  if prior then return {prior, 1} end
end
${NUMBERING(4, 5, 6, 7, 12)}
top = top + 1
redis.call('HSET', KEYS[1], 't', top)
redis.call('PEXPIRE', KEYS[1], ARGV[10])
if tonumber(ARGV[8]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[8], top .. '-1', 'd', ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
end
redis.call('${sharded ? "SPUBLISH" : "PUBLISH"}', ARGV[1], top .. ' ' .. ARGV[2] .. ' ' .. epoch .. ' ' .. ARGV[3])
local reply = top .. ' ' .. epoch
if window > 0 then redis.call('SET', KEYS[3], reply, 'PX', window) end
return {reply, 0}`;
}

/**
 * The join script: the channel's position (creating its numbering when there is none, as a subscriber needs an epoch
 * to resume with), after the same checks as a publish. Returns `{offset, epoch}`.
 * KEYS: meta, history. ARGV: known epoch, redis floor, floor, new epoch, meta ttl ms, node run id.
 */
export const JOIN_SCRIPT = `${NUMBERING(1, 2, 3, 4, 6)}
redis.call('HSET', KEYS[1], 't', top)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {top, epoch}`;

/** A stream entry id for `offset` (what the publish script writes), for XRANGE bounds. */
export function historyId(offset: number): string {
  return `${offset}-1`;
}

/** XRANGE's reply as history entries; entries that are not ours are skipped. */
export function parseHistory(reply: unknown): [offset: number, dataJson: string][] {
  const out: [number, string][] = [];
  if (!Array.isArray(reply)) return out;
  for (const entry of reply) {
    if (!Array.isArray(entry)) continue;
    const [id, fields] = entry as [unknown, unknown];
    const offset = Number.parseInt(String(id), 10);
    if (!Number.isSafeInteger(offset)) continue;
    // RESP2 and RESP3 give the fields as a flat list; some clients map them.
    let data: unknown;
    if (Array.isArray(fields)) {
      const i = fields.indexOf("d");
      data = i >= 0 ? fields[i + 1] : undefined;
    } else if (fields instanceof Map) data = fields.get("d");
    else if (typeof fields === "object" && fields !== null) data = (fields as { d?: unknown }).d;
    if (typeof data === "string") out.push([offset, data]);
  }
  return out;
}

/** `"<offset> <epoch>"` as the scripts reply it. */
export function parsePosition(text: unknown): { offset: number; epoch: string } | null {
  const s = String(text);
  const space = s.indexOf(" ");
  const offset = Number(s.slice(0, space));
  if (space < 1 || !Number.isSafeInteger(offset) || space === s.length - 1) return null;
  return { offset, epoch: s.slice(space + 1) };
}

export type ChannelMessage = { offset: number; epoch: string; own: boolean; dataJson: string | null };

const MAX_EPOCH_LENGTH = 64;

/** Reads `<offset> <origin> <epoch> <data>`; the data of our own echoes is not decoded. Null when malformed. */
export function parseChannelMessage(payload: Buffer, origin: Buffer): ChannelMessage | null {
  const space = payload.indexOf(0x20);
  if (space < 1 || space > 16) return null;
  const offset = Number(payload.toString("latin1", 0, space));
  const originStart = space + 1;
  const epochStart = originStart + ORIGIN_LENGTH + 1;
  if (!Number.isSafeInteger(offset) || payload.length < epochStart || payload[epochStart - 1] !== 0x20)
    return null;
  const epochEnd = payload.indexOf(0x20, epochStart);
  if (epochEnd <= epochStart || epochEnd - epochStart > MAX_EPOCH_LENGTH) return null;
  const epoch = payload.toString("latin1", epochStart, epochEnd);
  const own = payload.compare(origin, 0, ORIGIN_LENGTH, originStart, originStart + ORIGIN_LENGTH) === 0;
  return { offset, epoch, own, dataJson: own ? null : payload.toString("utf8", epochEnd + 1) };
}

/** A Socket.IO adapter message for Redis: origin, then the message as v8 serializes it (as IPC does, Buffers too). */
export function encodeSioMessage(origin: Buffer, message: unknown): Buffer {
  return Buffer.concat([origin, serialize(message)]);
}

export type SioEnvelope = { origin: string; message: Record<string, unknown> };

/** Null for our own echoes and for anything that is not an adapter message. */
export function decodeSioMessage(payload: Buffer, origin: Buffer): SioEnvelope | null {
  if (payload.length <= ORIGIN_LENGTH) return null;
  if (payload.compare(origin, 0, ORIGIN_LENGTH, 0, ORIGIN_LENGTH) === 0) return null;
  let message: unknown;
  try {
    message = deserialize(payload.subarray(ORIGIN_LENGTH));
  } catch {
    return null;
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) return null;
  return {
    origin: payload.toString("latin1", 0, ORIGIN_LENGTH),
    message: message as Record<string, unknown>,
  };
}
