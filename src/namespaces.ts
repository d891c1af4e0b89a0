import type { Config, NamespaceSettings } from "./config.js";

/** What a channel's namespace allows and keeps: resolved once per namespace from the config. */
export type NamespacePolicy = {
  readonly historySize: number;
  readonly historyTtlMs: number;
  readonly clientPublish: boolean;
  readonly presence: boolean;
  readonly joinLeave: boolean;
  readonly subscribeHook: boolean;
  readonly publishHook: boolean;
};

/** Namespace of a channel: the part before the first ':' ("chat:1" → "chat"), or "" when there is none. */
export function namespaceOf(channel: string): string {
  const i = channel.indexOf(":");
  return i === -1 ? "" : channel.slice(0, i);
}

/**
 * Per-namespace settings (`namespaces` in the config file). A namespace's own entry wins, then the `""` entry (the
 * default for every namespace), then the flags: --history-size, --history-ttl, and --publish-namespaces for
 * clientPublish. Namespaces nobody configured share two policy objects, so arbitrary channel names cost nothing.
 */
export class Namespaces {
  readonly #configured = new Map<string, NamespacePolicy>();
  readonly #publishing: NamespacePolicy;
  readonly #quiet: NamespacePolicy;
  readonly #publishNamespaces: ReadonlySet<string>;
  readonly #defaultPublish: boolean | undefined;

  constructor(config: Pick<Config, "historySize" | "historyTtlMs" | "publishNamespaces" | "namespaces">) {
    this.#publishNamespaces = new Set(config.publishNamespaces.split(",").filter(Boolean));
    const fallback: NamespaceSettings = config.namespaces[""] ?? {};
    this.#defaultPublish = fallback.clientPublish;
    const policy = (own: NamespaceSettings, clientPublish: boolean): NamespacePolicy =>
      Object.freeze({
        historySize: own.historySize ?? fallback.historySize ?? config.historySize,
        historyTtlMs: own.historyTtlMs ?? fallback.historyTtlMs ?? config.historyTtlMs,
        clientPublish: own.clientPublish ?? fallback.clientPublish ?? clientPublish,
        presence: own.presence ?? fallback.presence ?? false,
        joinLeave: own.joinLeave ?? fallback.joinLeave ?? false,
        subscribeHook: own.subscribeHook ?? fallback.subscribeHook ?? true,
        publishHook: own.publishHook ?? fallback.publishHook ?? true,
      });
    for (const [name, own] of Object.entries(config.namespaces)) {
      this.#configured.set(name, policy(own, this.#publishNamespaces.has(name)));
    }
    this.#publishing = policy({}, true);
    this.#quiet = policy({}, false);
  }

  of(channel: string): NamespacePolicy {
    const ns = namespaceOf(channel);
    const own = this.#configured.get(ns);
    if (own) return own;
    return (this.#defaultPublish ?? this.#publishNamespaces.has(ns)) ? this.#publishing : this.#quiet;
  }

  /** The shortest history TTL any namespace uses (the sweep runs often enough for it). */
  get shortestTtlMs(): number {
    let ttl = this.#quiet.historyTtlMs;
    for (const p of this.#configured.values()) ttl = Math.min(ttl, p.historyTtlMs);
    return ttl;
  }
}
