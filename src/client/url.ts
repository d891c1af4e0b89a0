/** The connection URL with the token in `?token=` (the server also takes `Authorization`, which browsers cannot set). */
export function withToken(url: string, token: string | undefined): string {
  if (token === undefined || token === "") return url;
  const hash = url.indexOf("#");
  const base = hash === -1 ? url : url.slice(0, hash);
  const fragment = hash === -1 ? "" : url.slice(hash);
  const separator = base.includes("?") ? (base.endsWith("?") || base.endsWith("&") ? "" : "&") : "?";
  return `${base}${separator}token=${encodeURIComponent(token)}${fragment}`;
}
