import type { Resume } from "../bus/bus.js";
import { SwitchboardError } from "../errors.js";
import type { Namespaces } from "../namespaces.js";
import type { ClientMember } from "../worker/client-member.js";
import type { SubscribeOutcome, Subscriptions } from "../worker/subscriptions.js";
import type { BackendHooks } from "./backend-hooks.js";

/** What a subscribe the client gave up on while the hook was asked gets: a plain ack (every request is answered). */
const ABANDONED: SubscribeOutcome = {
  ok: true,
  offset: 0,
  epoch: "",
  history: [],
  gap: null,
  recovered: false,
};

/**
 * Client subscribes through the subscribe hook, for both gateways: where it is configured and the namespace does
 * not opt out, the backend is asked before Subscriptions joins. Across the wait, an unsubscribe (`cancel`) or a
 * disconnect wins: no join afterwards; a second subscribe to the channel meanwhile is refused as pending.
 * Only members with a hook call in flight are held here.
 */
export class SubscribeGate {
  readonly #hooks: BackendHooks;
  readonly #namespaces: Namespaces;
  readonly #subscriptions: Subscriptions<ClientMember>;
  readonly #asking = new Map<ClientMember, Set<string>>();

  constructor(hooks: BackendHooks, namespaces: Namespaces, subscriptions: Subscriptions<ClientMember>) {
    this.#hooks = hooks;
    this.#namespaces = namespaces;
    this.#subscriptions = subscriptions;
  }

  subscribe(
    member: ClientMember,
    channel: string,
    resume: Resume | null,
    done: (o: SubscribeOutcome) => void,
  ): void {
    // Already a member (or joining): Subscriptions answers that without asking the backend again.
    if (!this.#asks(channel) || member.channels.has(channel)) {
      return this.#subscriptions.subscribe(member, channel, resume, done);
    }
    let channels = this.#asking.get(member);
    if (channels?.has(channel)) {
      const error = new SwitchboardError("bad_request", `a subscribe to ${channel} is already pending`);
      return done({ ok: false, error });
    }
    if (!channels) {
      channels = new Set();
      this.#asking.set(member, channels);
    }
    channels.add(channel);
    this.#hooks.subscribe(member, channel).then(
      () => {
        if (!this.#settle(member, channel) || member.closed) return done(ABANDONED);
        this.#subscriptions.subscribe(member, channel, resume, done);
      },
      (error: SwitchboardError) => {
        done(this.#settle(member, channel) && !member.closed ? { ok: false, error } : ABANDONED);
      },
    );
  }

  /** An unsubscribe: a hook call in flight for the channel no longer leads to a join. */
  cancel(member: ClientMember, channel: string): void {
    const channels = this.#asking.get(member);
    if (!channels?.delete(channel)) return;
    if (channels.size === 0) this.#asking.delete(member);
  }

  #asks(channel: string): boolean {
    return this.#hooks.subscribeHook && this.#namespaces.of(channel).subscribeHook;
  }

  /** The hook answered: true when the subscribe is still wanted (not cancelled). */
  #settle(member: ClientMember, channel: string): boolean {
    const channels = this.#asking.get(member);
    if (!channels?.delete(channel)) return false;
    if (channels.size === 0) this.#asking.delete(member);
    return true;
  }
}
