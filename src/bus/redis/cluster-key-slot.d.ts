// cluster-key-slot (ioredis' own slot function) ships no types.
declare module "cluster-key-slot" {
  /** Redis Cluster's slot for a key: CRC16-XMODEM of the key, or of its non-empty `{hash tag}`, mod 16384. */
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
