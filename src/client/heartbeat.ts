type Timer = ReturnType<typeof setTimeout>;

/**
 * Dead-link detection from the client side. The browser API hides WebSocket ping frames, so the SDK sends an
 * application ping when nothing arrived for `intervalMs` and gives up on the link when nothing at all arrives
 * within `timeoutMs` after it. Received frames only record a time (cheap at high message rates); the timer
 * re-arms itself for the remaining idle time.
 */
export class Heartbeat {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #ping: () => void;
  readonly #dead: () => void;
  #lastHeard = 0;
  #awaitingReply = false;
  #timer: Timer | null = null;

  constructor(intervalMs: number, timeoutMs: number, ping: () => void, dead: () => void) {
    this.#intervalMs = intervalMs;
    this.#timeoutMs = timeoutMs;
    this.#ping = ping;
    this.#dead = dead;
  }

  start(): void {
    this.stop();
    this.#lastHeard = Date.now();
    this.#arm(this.#intervalMs);
  }

  /** Any frame from the server proves the link is alive. */
  heard(): void {
    this.#lastHeard = Date.now();
    if (this.#awaitingReply) {
      this.#awaitingReply = false;
      this.#arm(this.#intervalMs);
    }
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#awaitingReply = false;
  }

  #arm(ms: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  #check(): void {
    this.#timer = null;
    if (this.#awaitingReply) {
      this.#awaitingReply = false;
      this.#dead();
      return;
    }
    const idle = Date.now() - this.#lastHeard;
    if (idle < this.#intervalMs) {
      this.#arm(this.#intervalMs - idle);
      return;
    }
    this.#awaitingReply = true;
    this.#arm(this.#timeoutMs);
    this.#ping();
  }
}
