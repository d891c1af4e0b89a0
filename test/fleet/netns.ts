/**
 * The fleet's network: Linux network namespaces on a bridge of their own, and nothing else. The bridge lives in a
 * namespace of its own too (the "switch"), so the machine's root namespace gains no interface, route or firewall
 * rule: every veth pair has one end in the switch and one in a host namespace. There is no uplink, so nothing in
 * the fleet can reach anything off the machine, nor the machine's own services.
 *
 * Every name starts with `sbfleet-<pid of the test process>-`: cleanup() removes what this run made, and
 * removeLeftovers() what a run that crashed (its pid gone) left behind. Removing a namespace first kills every
 * process still inside it (`ip netns pids`), which are all ours: only this test starts processes there.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { isAlive } from "../../src/harness/process-tree.js";

export const PREFIX = "sbfleet-";

/** A host namespace: its name, its address on the fleet bridge, its side of the bridge. */
export interface NetHost {
  /** Short role name: app1, lb1, client… */
  role: string;
  ns: string;
  addr: string;
  /** The veth end in the switch namespace (set down to cut the host off). */
  port: string;
}

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Every namespace name on the machine. */
function namespaces(): string[] {
  return ip(["netns", "list"])
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter(Boolean);
}

/** Kills every process inside `ns` (SIGKILL, by pid) until none is left, then deletes the namespace. */
function removeNamespace(ns: string): void {
  for (let round = 0; round < 50; round++) {
    const res = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
    const pids = (res.stdout ?? "")
      .split("\n")
      .map(Number)
      .filter((p) => Number.isInteger(p) && p > 0 && p !== process.pid);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    // Give the kernel a moment to reap them (bounded: 50 rounds of at most 20 ms).
    spawnSync("sleep", ["0.02"]);
  }
  spawnSync("ip", ["netns", "delete", ns], { stdio: "ignore" });
}

/** Removes the namespaces of earlier runs whose test process is gone (a crash, a SIGKILL). */
export function removeLeftovers(): string[] {
  const stale = namespaces().filter((ns) => {
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(ns);
    return m !== null && Number(m[1]) !== process.pid && !isAlive(Number(m[1]));
  });
  // Host namespaces first, the switch last (its veth ends go with the hosts).
  for (const ns of stale.sort((a, b) => Number(a.endsWith("-sw")) - Number(b.endsWith("-sw"))))
    removeNamespace(ns);
  return stale;
}

/** This run's network. Create it with `Network.create`, remove it with `cleanup()` (idempotent, synchronous). */
export class Network {
  readonly tag = `${PREFIX}${process.pid}`;
  readonly switchNs = `${this.tag}-sw`;
  readonly hosts = new Map<string, NetHost>();
  #made: string[] = [];
  #cleaned = false;

  /** The switch namespace with its bridge; hosts come with addHost. */
  static create(): Network {
    const net = new Network();
    net.#netns(net.switchNs);
    ip(["-n", net.switchNs, "link", "add", "br0", "type", "bridge"]);
    ip(["-n", net.switchNs, "link", "set", "br0", "up"]);
    return net;
  }

  #netns(ns: string): void {
    ip(["netns", "add", ns]);
    this.#made.push(ns);
    ip(["-n", ns, "link", "set", "lo", "up"]);
  }

  /** A namespace with loopback up and `eth0` on the bridge at `addr`/`prefixLen`. */
  addHost(role: string, addr: string, prefixLen = 23): NetHost {
    const ns = `${this.tag}-${role}`;
    const port = `v-${role}`;
    this.#netns(ns);
    ip(["-n", this.switchNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    ip(["-n", this.switchNs, "link", "set", port, "master", "br0", "up"]);
    ip(["-n", ns, "addr", "add", `${addr}/${prefixLen}`, "dev", "eth0"]);
    ip(["-n", ns, "link", "set", "eth0", "up"]);
    const host = { role, ns, addr, port };
    this.hosts.set(role, host);
    return host;
  }

  host(role: string): NetHost {
    const h = this.hosts.get(role);
    if (!h) throw new Error(`no fleet host ${role}`);
    return h;
  }

  /** Cuts a host off the bridge (its switch port down) or connects it again. */
  link(role: string, up: boolean): void {
    ip(["-n", this.switchNs, "link", "set", this.host(role).port, up ? "up" : "down"]);
  }

  /** `ip netns exec <ns> <command…>`: the argv that runs a command inside a host. */
  exec(role: string, command: string, args: string[]): [string, string[]] {
    return ["ip", ["netns", "exec", this.host(role).ns, command, ...args]];
  }

  /** Runs a short command inside a host to completion; its stdout, or an error with its output. */
  run(role: string, command: string, args: string[], timeoutMs = 30_000): string {
    const [cmd, argv] = this.exec(role, command, args);
    return execFileSync(cmd, argv, {
      encoding: "utf8",
      timeout: timeoutMs,
      stdio: ["ignore", "pipe", "pipe"],
    });
  }

  /** Kills every process in every namespace of this run and deletes them (the switch, with its bridge, last). */
  cleanup(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    const order = [...this.#made.filter((n) => n !== this.switchNs), this.switchNs];
    for (const ns of order) removeNamespace(ns);
  }

  /** What is left of this run on the machine (namespaces by name): empty after cleanup(). */
  remaining(): string[] {
    return namespaces().filter((ns) => ns.startsWith(`${this.tag}-`));
  }
}
