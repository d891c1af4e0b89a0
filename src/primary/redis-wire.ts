import { deserialize, serialize } from "node:v8";

/**
 * What Switchboard writes to Redis, in one place: key and channel names, the two Lua scripts and the payloads.
 *
 * Names (prefix `switchboard` by default, `--redis-prefix`):
 *   `<prefix>:seq:{<channel>}`   string   the channel's last offset (INCR), expires after a day without publishes
 *   `<prefix>:msg:{<channel>}`   channel  the channel's messages: `<offset> <origin> <data JSON>`
 *   `<prefix>:sio`               channel  Socket.IO adapter traffic for every host: `<origin><v8 serialized message>`
 *   `<prefix>:sio:<origin>`      channel  Socket.IO adapter responses for one host
 * The `{channel}` hash tag puts a channel's counter and its shard channel in the same slot, which Redis Cluster
 * requires for the publish script (it writes the key and SPUBLISHes to the channel in one step).
 */

/** Length of an origin id: one per primary process, so each host recognises its own echoes. */
export const ORIGIN_LENGTH = 12;

/** How long a channel's counter survives without publishes. */
export const SEQUENCE_TTL_MS = 24 * 60 * 60 * 1000;

export class RedisNames {
  readonly #seq: string;
  readonly #msg: string;
  readonly sio: string;
  constructor(prefix: string) {
    this.#seq = `${prefix}:seq:{`;
    this.#msg = `${prefix}:msg:{`;
    this.sio = `${prefix}:sio`;
  }
  sequenceKey(channel: string): string {
    return `${this.#seq}${channel}}`;
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
 * The publish script. INCR and (S)PUBLISH run as one step, so per channel the order on the subscription is the
 * order of the offsets. `floor` is the highest offset the publishing host knows of: a counter that went back
 * (Redis restarted without data, or the key expired) is raised above it, so a host's offsets never repeat.
 * KEYS[1] sequence key; ARGV: message channel, origin, data JSON, floor, ttl ms.
 */
export function publishScript(sharded: boolean): string {
  return `
local n = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[4])
if n <= floor then
  n = floor + 1
  redis.call('SET', KEYS[1], n)
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('${sharded ? "SPUBLISH" : "PUBLISH"}', ARGV[1], string.format('%d %s ', n, ARGV[2]) .. ARGV[3])
return n`;
}

/**
 * The join script: the channel's current offset, after raising the counter to `floor` (what this host already
 * delivered, perhaps sequenced alone during an outage) so no host is handed an offset it has passed.
 * KEYS[1] sequence key; ARGV: floor, ttl ms.
 */
export const SYNC_SCRIPT = `
local v = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if v < floor then
  redis.call('SET', KEYS[1], floor, 'PX', ARGV[2])
  v = floor
end
return v`;

export type ChannelMessage = { offset: number; own: boolean; dataJson: string | null };

/** Reads `<offset> <origin> <data>`; the data of our own echoes is not decoded. Null when malformed. */
export function parseChannelMessage(payload: Buffer, origin: Buffer): ChannelMessage | null {
  const space = payload.indexOf(0x20);
  if (space < 1 || space > 16) return null;
  const offset = Number(payload.toString("latin1", 0, space));
  const originStart = space + 1;
  const dataStart = originStart + ORIGIN_LENGTH + 1;
  if (!Number.isSafeInteger(offset) || payload.length < dataStart || payload[dataStart - 1] !== 0x20)
    return null;
  const own = payload.compare(origin, 0, ORIGIN_LENGTH, originStart, originStart + ORIGIN_LENGTH) === 0;
  return { offset, own, dataJson: own ? null : payload.toString("utf8", dataStart) };
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
