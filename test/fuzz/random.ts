/** A seeded PRNG (mulberry32) and the choices the fuzzers make with it: a failure is replayed from its seed. */
export class Random {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }

  /** A short string of printable and awkward characters. */
  string(max = 24): string {
    const alphabet = 'abcXYZ019_-:.@/= \\"{}[],\u00e9\u4e2d\u0000\ud83d\ude00';
    let s = "";
    for (let n = this.int(max); n > 0; n--) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  /** A random JSON value, up to `depth` levels, sometimes of awkward types. */
  json(depth = 3): unknown {
    switch (this.int(depth > 0 ? 9 : 6)) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 2 ** 53, -(2 ** 60), 1e308, Number.MIN_VALUE]);
      case 3:
        return this.string();
      case 4:
        return "x".repeat(this.pick([0, 1, 127, 128, 1024, 5000]));
      case 5:
        return this.pick(["__proto__", "constructor", "subscribe", "news", "chat:1", ""]);
      case 6:
      case 7:
        return Array.from({ length: this.int(4) }, () => this.json(depth - 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let n = this.int(4); n > 0; n--)
          o[
            this.pick([
              "type",
              "channel",
              "id",
              "since",
              "epoch",
              "data",
              "token",
              "__proto__",
              this.string(6),
            ])
          ] = this.json(depth - 1);
        return o;
      }
    }
  }

  /** Mutates bytes: flips, drops, duplicates or inserts a few. */
  mutate(input: Buffer): Buffer {
    const out = [...input];
    for (let n = 1 + this.int(4); n > 0 && out.length > 0; n--) {
      const at = this.int(out.length);
      switch (this.int(4)) {
        case 0:
          out[at] = this.int(256);
          break;
        case 1:
          out.splice(at, 1);
          break;
        case 2:
          out.splice(at, 0, out[at] as number);
          break;
        default:
          out.splice(at, 0, this.pick([0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x5c, 0xff, 0xc3, 0x00]));
      }
    }
    return Buffer.from(out);
  }
}
