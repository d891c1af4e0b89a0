import { SwitchboardClientError } from "./errors.js";

type Timer = ReturnType<typeof setTimeout>;

/** One rpc call until it is answered, refused, lost or timed out. */
export type PendingRpc = {
  readonly method: string;
  readonly data: unknown;
  /** queued: waits for a connection; sent: awaiting its reply. */
  status: "queued" | "sent";
  deadline: Timer;
  resolve(data: unknown): void;
  reject(err: Error): void;
};

/** Sends the call when connected and returns true; false leaves it queued for the next connection. */
export type SendRpc = (call: PendingRpc) => boolean;

/**
 * rpc calls from sending to settling, for both protocols. Unlike a publish, a call is never sent twice: the
 * backend's method may not be safe to repeat, so one whose connection dropped before the answer rejects with
 * `connection_lost` (the app decides); one made while disconnected waits for the connection.
 */
export class RpcCalls {
  readonly #pending = new Set<PendingRpc>();
  readonly #send: SendRpc;
  readonly #timeoutMs: number;

  constructor(send: SendRpc, timeoutMs: number) {
    this.#send = send;
    this.#timeoutMs = timeoutMs;
  }

  add(method: string, data: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const call: PendingRpc = {
        method,
        data,
        status: "queued",
        deadline: setTimeout(() => {
          this.#pending.delete(call);
          reject(
            new SwitchboardClientError("timeout", `rpc ${method} not answered within ${this.#timeoutMs} ms`),
          );
        }, this.#timeoutMs),
        resolve,
        reject,
      };
      this.#pending.add(call);
      call.status = this.#send(call) ? "sent" : "queued";
    });
  }

  answered(call: PendingRpc, data: unknown): void {
    if (this.#settle(call)) call.resolve(data);
  }

  failed(call: PendingRpc, err: SwitchboardClientError): void {
    if (this.#settle(call)) call.reject(err);
  }

  /** A connection is up: send what waited for one. */
  flush(): void {
    for (const call of this.#pending)
      if (call.status === "queued") call.status = this.#send(call) ? "sent" : "queued";
  }

  /** The connection dropped: what was sent on it may or may not have run, so it is not sent again. */
  connectionLost(): void {
    for (const call of [...this.#pending]) {
      if (call.status !== "sent") continue;
      this.failed(
        call,
        new SwitchboardClientError("connection_lost", `the connection dropped during rpc ${call.method}`),
      );
    }
  }

  rejectAll(err: Error): void {
    for (const call of [...this.#pending]) if (this.#settle(call)) call.reject(err);
  }

  #settle(call: PendingRpc): boolean {
    if (!this.#pending.delete(call)) return false;
    clearTimeout(call.deadline);
    return true;
  }
}
