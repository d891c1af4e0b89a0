const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

type Crypto = { getRandomValues<T extends Uint8Array>(array: T): T };

/**
 * A random key of `length` URL-safe characters (6 bits each: 22 characters ≈ 132 bits), for idempotency keys.
 * Uses the platform's CSPRNG (browsers and Node 20 have globalThis.crypto); Math.random only where there is none,
 * which is still unique enough to tell one client's publishes apart.
 */
export function randomKey(length = 22): string {
  const bytes = new Uint8Array(length);
  const crypto = (globalThis as { crypto?: Partial<Crypto> }).crypto;
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let key = "";
  for (const b of bytes) key += ALPHABET[b & 63];
  return key;
}
