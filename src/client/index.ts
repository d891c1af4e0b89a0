/**
 * switchboard/client: the browser and Node SDK of Switchboard (docs/client.md). No Node-only code: it runs
 * unchanged in a browser and in Node 20 (pass `ws`'s WebSocket there).
 */
export { backoffDelay } from "./backoff.js";
export { isRetryable, SwitchboardClientError } from "./errors.js";
export type { PublishOptions, PublishResult } from "./publish-queue.js";
export { randomKey } from "./random-key.js";
export {
  type SocketIOLike,
  SocketIOSubscriptions,
  type SocketIOSubscriptionsEvents,
  type SocketIOSubscriptionsOptions,
} from "./socketio.js";
export type {
  Gap,
  MessageMeta,
  PresenceInfo,
  Subscribed,
  SubscribeOptions,
  Subscription,
  SubscriptionHandlers,
} from "./subscription.js";
export {
  type ConnectionState,
  Switchboard,
  type SwitchboardEvents,
  type SwitchboardOptions,
} from "./switchboard.js";
export { withToken } from "./url.js";
export type { WebSocketConstructor, WebSocketLike } from "./web-socket.js";
