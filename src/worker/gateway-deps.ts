import type { Config } from "../config.js";
import type { BackendHooks } from "../hooks/backend-hooks.js";
import type { Logger } from "../log.js";
import type { Namespaces } from "../namespaces.js";
import type { TokenVerifier } from "./auth.js";
import type { BusClient } from "./bus-client.js";
import type { ChannelRegistry } from "./channel-registry.js";
import type { ClientMember } from "./client-member.js";
import type { ClientsByUser } from "./clients-by-user.js";
import type { FrameFlusher } from "./frame-flusher.js";
import type { Subscriptions } from "./subscriptions.js";
import type { WorkerCounters } from "./worker-counters.js";

/** What both client gateways (/ws and Socket.IO) are built from. */
export type GatewayDeps = {
  config: Config;
  namespaces: Namespaces;
  bus: BusClient;
  registry: ChannelRegistry<ClientMember>;
  subscriptions: Subscriptions<ClientMember>;
  verifyToken: TokenVerifier;
  counters: WorkerCounters;
  /** Open connections by user: each gateway adds a connection once it is open and removes it when it closes. */
  clients: ClientsByUser;
  /** One per worker: the backend hooks (their --hook-concurrency bound is the worker's). */
  hooks: BackendHooks;
  /** One per worker: both protocols' write passes are spaced by what they cost together. */
  flusher: FrameFlusher;
  log: Logger;
};
