/**
 * Per-step delivery accounting inside a load-client process. Every published message carries
 * `{"t":<epoch ms>,"s":<step>,"h":<0|1 = first or second half of the step>}` as its data; the client reads
 * those three numbers straight from the frame bytes (no JSON.parse) and records now − t.
 */
import { Histogram, type HistogramSnapshot } from "../histogram.js";

const T_KEY = Buffer.from('"t":');
const CH_DOT = 0x2e;
const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_MINUS = 0x2d;

/** What a client process reports for one step. */
export interface StepReport {
  step: number;
  received: number;
  firstHalf: HistogramSnapshot;
  secondHalf: HistogramSnapshot;
  firstAt: number;
  lastAt: number;
}

class StepAccumulator {
  received = 0;
  firstHalf = new Histogram();
  secondHalf = new Histogram();
  firstAt = 0;
  lastAt = 0;
}

let numEnd = 0;

/** Parses a JSON number starting at `pos`; sets numEnd to the index after it. NaN when none. */
function parseNumberAt(buf: Buffer, pos: number, end: number): number {
  let i = pos;
  let neg = false;
  if (buf[i] === CH_MINUS) {
    neg = true;
    i++;
  }
  let value = 0;
  let digits = 0;
  while (i < end) {
    const c = buf[i] as number;
    if (c < CH_0 || c > CH_9) break;
    value = value * 10 + (c - CH_0);
    i++;
    digits++;
  }
  if (i < end && buf[i] === CH_DOT) {
    i++;
    let scale = 0.1;
    while (i < end) {
      const c = buf[i] as number;
      if (c < CH_0 || c > CH_9) break;
      value += (c - CH_0) * scale;
      scale /= 10;
      i++;
      digits++;
    }
  }
  numEnd = i;
  if (digits === 0) return Number.NaN;
  return neg ? -value : value;
}

/** Reads the number after `"key":` searching from `from`; the fast path expects `,"k":` right there. */
function numberAfter(buf: Buffer, from: number, end: number, key: number): number {
  // Fast path: `,"s":` immediately follows the previous number.
  if (buf[from] === 0x2c && buf[from + 1] === 0x22 && buf[from + 2] === key && buf[from + 3] === 0x22) {
    return parseNumberAt(buf, from + 5, end);
  }
  const needle = Buffer.from([0x22, key, 0x22, 0x3a]);
  const idx = buf.indexOf(needle, from);
  if (idx < 0 || idx >= end) return Number.NaN;
  return parseNumberAt(buf, idx + 4, end);
}

export class DeliveryStats {
  readonly #steps = new Map<number, StepAccumulator>();
  readonly #collected = new Set<number>();
  /** Deliveries that arrived after their step had been collected. */
  late = 0;
  /** Frames that looked like deliveries but had no readable timestamp. */
  unparsed = 0;

  /**
   * Records a delivery if `buf[start,end)` holds a timestamped message; returns false when it holds none
   * (then the frame is something else: an ack, an error, a control message).
   */
  onPayload(buf: Buffer, start: number, end: number, nowMs: number): boolean {
    const idx = buf.indexOf(T_KEY, start);
    if (idx < 0 || idx >= end) return false;
    const t = parseNumberAt(buf, idx + 4, end);
    const s = numberAfter(buf, numEnd, end, 0x73);
    const h = numberAfter(buf, numEnd, end, 0x68);
    if (Number.isNaN(t) || Number.isNaN(s)) {
      this.unparsed++;
      return true;
    }
    if (this.#collected.has(s)) {
      this.late++;
      return true;
    }
    let acc = this.#steps.get(s);
    if (!acc) {
      acc = new StepAccumulator();
      acc.firstAt = nowMs;
      this.#steps.set(s, acc);
    }
    acc.received++;
    acc.lastAt = nowMs;
    (h === 1 ? acc.secondHalf : acc.firstHalf).record(nowMs - t);
    return true;
  }

  /** Deliveries so far for a step (for progress polling). */
  received(step: number): number {
    return this.#steps.get(step)?.received ?? 0;
  }

  /** Final report of a step; later deliveries for it count as late. */
  take(step: number): StepReport {
    const acc = this.#steps.get(step) ?? new StepAccumulator();
    this.#steps.delete(step);
    this.#collected.add(step);
    return {
      step,
      received: acc.received,
      firstHalf: acc.firstHalf.snapshot(),
      secondHalf: acc.secondHalf.snapshot(),
      firstAt: acc.firstAt,
      lastAt: acc.lastAt,
    };
  }
}
