/** Redis Cluster hash slots: 16384, CRC16-XMODEM of the key or of its `{hash tag}`. */
export const SLOTS = 16384;

const table = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let crc = i << 8;
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  table[i] = crc;
}

/**
 * The slot Redis Cluster assigns to `key` (a key or a shard channel name). As in Redis, only the part between the
 * first `{` and the next `}` counts when it is not empty, which is how a channel's counter and its shard channel
 * land on the same node.
 */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, "utf8");
  const open = bytes.indexOf(0x7b);
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ (table[((crc >> 8) ^ b) & 0xff] as number);
  return crc % SLOTS;
}
