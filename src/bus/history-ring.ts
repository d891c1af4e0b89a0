import type { HistoryEntry } from "../ipc.js";

/** What one kept message costs besides its data: the entry array, the string header, the ring slot. */
export const ENTRY_OVERHEAD_BYTES = 64;

export function entryBytes(dataJson: string): number {
  return ENTRY_OVERHEAD_BYTES + dataJson.length;
}

/** A channel's last `capacity` messages, oldest first, with the bytes they hold. Offsets are contiguous. */
export class HistoryRing {
  readonly #items: (HistoryEntry | undefined)[];
  #start = 0;
  #length = 0;
  bytes = 0;

  constructor(capacity: number) {
    this.#items = new Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  /** Appends the next message; returns the bytes of the one it pushed out, if full. */
  push(offset: number, dataJson: string): number {
    const capacity = this.#items.length;
    let freed = 0;
    if (this.#length === capacity) freed = this.shift();
    this.#items[(this.#start + this.#length) % capacity] = [offset, dataJson];
    this.#length += 1;
    this.bytes += entryBytes(dataJson);
    return freed;
  }

  /** Drops the oldest message; returns its bytes. */
  shift(): number {
    if (this.#length === 0) return 0;
    const entry = this.#items[this.#start] as HistoryEntry;
    this.#items[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.#items.length;
    this.#length -= 1;
    const freed = entryBytes(entry[1]);
    this.bytes -= freed;
    return freed;
  }

  /** The messages after offset `since`, oldest first. */
  after(since: number): HistoryEntry[] {
    const out: HistoryEntry[] = [];
    const capacity = this.#items.length;
    for (let i = 0; i < this.#length; i++) {
      const entry = this.#items[(this.#start + i) % capacity] as HistoryEntry;
      if (entry[0] > since) out.push(entry);
    }
    return out;
  }
}
