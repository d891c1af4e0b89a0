/** A subscriber the registry can hold: a raw WebSocket connection or a Socket.IO socket. */
export interface Member {
  readonly protocol: "raw" | "sio";
  /** Channels this member is subscribed to (or joining). */
  readonly channels: Set<string>;
  readonly closed: boolean;
}

type Entry<M extends Member> = {
  raw: Set<M>;
  sio: Set<M>;
  /** Subscribes sent to the primary and not answered yet. */
  pending: number;
  /** True once the primary confirmed this worker's interest. */
  live: boolean;
  /** The channel's position as this worker has seen it (its last delivery, or the primary's last reply). */
  offset: number;
  epoch: string;
};

export type ChannelPosition = { offset: number; epoch: string };

/**
 * Local subscribers per channel on one worker, and whether the primary delivers that channel here yet.
 * Pure bookkeeping: no sockets, no IPC.
 */
export class ChannelRegistry<M extends Member> {
  readonly #channels = new Map<string, Entry<M>>();

  #entry(channel: string): Entry<M> {
    let e = this.#channels.get(channel);
    if (!e) {
      e = { raw: new Set(), sio: new Set(), pending: 0, live: false, offset: 0, epoch: "" };
      this.#channels.set(channel, e);
    }
    return e;
  }

  /** True when a subscribe can join at once, without asking the primary. */
  isLive(channel: string): boolean {
    return this.#channels.get(channel)?.live === true;
  }

  beginPending(channel: string, member: M): void {
    this.#entry(channel).pending += 1;
    member.channels.add(channel);
  }

  /** The position a subscribe that joins at once answers with (only meaningful while the channel is live). */
  position(channel: string): ChannelPosition {
    const e = this.#channels.get(channel);
    return e ? { offset: e.offset, epoch: e.epoch } : { offset: 0, epoch: "" };
  }

  /** A message was delivered here (positions follow deliveries, which arrive in offset order). */
  delivered(channel: string, offset: number): void {
    const e = this.#channels.get(channel);
    if (e) e.offset = offset;
  }

  /** The primary moved the channel's position: a join point, or a notice that messages may be missing. */
  moved(channel: string, position: ChannelPosition): void {
    const e = this.#channels.get(channel);
    if (!e) return;
    e.offset = position.offset;
    e.epoch = position.epoch;
  }

  /** Ends a pending subscribe at `position`; the member joins unless it left meanwhile. False if it did not. */
  endPending(channel: string, member: M, position: ChannelPosition | null): boolean {
    const e = this.#entry(channel);
    e.pending -= 1;
    const joined = position !== null;
    if (position) {
      e.live = true;
      e.offset = position.offset;
      e.epoch = position.epoch;
    }
    if (!joined || member.closed || !member.channels.has(channel)) return false;
    this.add(channel, member);
    return true;
  }

  add(channel: string, member: M): void {
    const e = this.#entry(channel);
    (member.protocol === "raw" ? e.raw : e.sio).add(member);
    member.channels.add(channel);
  }

  /** Removes a member; returns true when the channel has nobody left here (tell the primary). */
  remove(channel: string, member: M): boolean {
    member.channels.delete(channel);
    const e = this.#channels.get(channel);
    if (!e) return false;
    (member.protocol === "raw" ? e.raw : e.sio).delete(member);
    if (e.raw.size + e.sio.size + e.pending > 0) return false;
    const wasLive = e.live;
    this.#channels.delete(channel);
    return wasLive;
  }

  /** Removes a member from all its channels; returns the channels now empty here. */
  removeAll(member: M): string[] {
    const emptied: string[] = [];
    for (const channel of [...member.channels]) if (this.remove(channel, member)) emptied.push(channel);
    return emptied;
  }

  rawMembers(channel: string): ReadonlySet<M> | undefined {
    return this.#channels.get(channel)?.raw;
  }

  sioMembers(channel: string): ReadonlySet<M> | undefined {
    return this.#channels.get(channel)?.sio;
  }

  get size(): number {
    return this.#channels.size;
  }

  /** The `limit` channels containing `text` with the most subscribers here (the admin page's search; a scan). */
  top(text: string, limit: number): [channel: string, subscribers: number][] {
    const out: [string, number][] = [];
    for (const [channel, e] of this.#channels)
      if (channel.includes(text)) out.push([channel, e.raw.size + e.sio.size]);
    out.sort((a, b) => b[1] - a[1]);
    return out.slice(0, limit);
  }
}
