import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize, relative } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { ROOT } from "./server.js";

/** Debian's chromium; nothing here ever downloads a browser (scripts/test-setup installs the package). */
export const CHROMIUM = "/usr/bin/chromium";
export const CLIENT_DIST = join(ROOT, "dist", "client");

/** Fails with one clear line when the browser or the built SDK is missing. */
export function requireBrowserSetup(): void {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with apt-get install chromium (scripts/test-setup does)`,
    );
  }
  if (!existsSync(join(CLIENT_DIST, "index.js"))) {
    throw new Error(`${relative(ROOT, CLIENT_DIST)}/index.js is missing: run npm run build first`);
  }
}

/** Headless chromium with a throwaway profile, no network side traffic (updates, sync, QUIC probes). */
export function launchChromium(): Promise<Browser> {
  requireBrowserSetup();
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 60_000,
  });
}

export type StaticSite = { url: string; close(): Promise<void> };

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".html": "text/html; charset=utf-8",
};

/**
 * Serves the built SDK under /client/ and the given pages (path → HTML) from 127.0.0.1 on a free port, so the page
 * loads the SDK exactly as an app would: as ES modules over HTTP, no bundler.
 */
export async function serveClient(pages: Record<string, string>): Promise<StaticSite> {
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const page = pages[path];
    if (page !== undefined) {
      res.writeHead(200, { "content-type": TYPES[".html"] });
      res.end(page);
      return;
    }
    const file = path.startsWith("/client/")
      ? normalize(join(CLIENT_DIST, path.slice("/client/".length)))
      : "";
    const type = TYPES[file.slice(file.lastIndexOf("."))];
    if (!file.startsWith(`${CLIENT_DIST}/`) || !type) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
