/**
 * The cross-host relay as the worker bridge sees it. Only `--redis` creates one (RedisRelay, loaded on demand);
 * without it the bridge sequences in the primary's ChannelHub and nothing here is imported at run time.
 */
export interface Relay {
  /**
   * Sequences one worker's publish batch across hosts, in order, and delivers each message on this host through
   * the bridge. `done` gets one offset per message and is never skipped: when Redis cannot be reached the messages
   * are sequenced and delivered on this host only (and counted as unrelayed).
   */
  publish(messages: readonly [channel: string, dataJson: string][], done: (offsets: number[]) => void): void;
  /**
   * Runs `ready` once messages other hosts publish on `channel` reach this host, so a subscribe reply promises
   * every later message; at once when they already do, or when the link is down (the subscription is restored later).
   */
  whenSubscribed(channel: string, ready: () => void): void;
}
