/**
 * Live progress on stderr: permanent lines with elapsed time, and a transient status line that is redrawn in
 * place on a terminal (and printed at most every few seconds otherwise).
 */
const NON_TTY_STATUS_EVERY_MS = 3000;

export class Progress {
  readonly #start = performance.now();
  readonly #tty: boolean;
  readonly #out: NodeJS.WriteStream;
  #statusShown = false;
  #lastStatusAt = 0;

  constructor(out: NodeJS.WriteStream = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  #stamp(): string {
    const s = Math.floor((performance.now() - this.#start) / 1000);
    return `[bench ${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}]`;
  }

  /** A permanent line. */
  log(line: string): void {
    this.#clearStatus();
    this.#out.write(`${this.#stamp()} ${line}\n`);
  }

  /** A transient line (connect progress and the like). */
  status(line: string): void {
    if (this.#tty) {
      this.#out.write(`\r\x1b[K${this.#stamp()} ${line}`);
      this.#statusShown = true;
      return;
    }
    const now = performance.now();
    if (now - this.#lastStatusAt < NON_TTY_STATUS_EVERY_MS) return;
    this.#lastStatusAt = now;
    this.#out.write(`${this.#stamp()} … ${line}\n`);
  }

  #clearStatus(): void {
    if (this.#statusShown) {
      this.#out.write("\r\x1b[K");
      this.#statusShown = false;
    }
  }
}
