import { keySlot } from "../../src/bus/redis/key-slot.js";
import { type RedisCluster, redisCli } from "../../src/harness/redis-server.js";

export {
  type RedisCluster,
  type RedisServer,
  redisCli,
  startRedis,
  startRedisCluster,
} from "../../src/harness/redis-server.js";

/** Port of the master that owns each hash slot, read from CLUSTER NODES. */
async function slotOwners(cluster: RedisCluster): Promise<Map<number, number>> {
  const owner = new Map<number, number>();
  const nodes = await redisCli(cluster.nodes[0]?.port as number, "CLUSTER", "NODES");
  for (const line of nodes.split("\n")) {
    const fields = line.split(" ");
    const port = Number(fields[1]?.split("@")[0]?.split(":")[1]);
    for (const range of fields.slice(8)) {
      const [from, to] = range.split("-").map(Number) as [number, number];
      for (let s = from; s <= (to ?? from); s++) owner.set(s, port);
    }
  }
  return owner;
}

/** `perNode` channel names `${prefix}${i}` owned by each master, in the order of `cluster.nodes`. */
export async function channelsOnEachNode(
  cluster: RedisCluster,
  perNode: number,
  prefix: string,
): Promise<string[][]> {
  const owner = await slotOwners(cluster);
  const byPort = new Map<number, string[]>(cluster.nodes.map((n) => [n.port, []]));
  for (let i = 0; [...byPort.values()].some((l) => l.length < perNode); i++) {
    const list = byPort.get(owner.get(keySlot(`${prefix}${i}`)) as number) as string[];
    if (list.length < perNode) list.push(`${prefix}${i}`);
  }
  return [...byPort.values()];
}
