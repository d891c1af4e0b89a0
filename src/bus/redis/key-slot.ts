import calculateSlot from "cluster-key-slot";

/** Redis Cluster hash slots. */
export const SLOTS = 16384;

/**
 * The slot Redis Cluster assigns to `key` (a key or a shard channel name), computed by the package ioredis itself
 * uses. Only the part inside a non-empty `{hash tag}` counts, which is how a channel's counter and its shard
 * channel land on the same node.
 */
export const keySlot: (key: string) => number = calculateSlot;
