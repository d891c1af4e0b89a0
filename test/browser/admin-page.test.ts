/**
 * The admin page in a real headless Chromium: it loads from the admin port alone (any other URL fails the test),
 * shows new connections and a rising delivery rate while clients connect and a publisher runs, and shows the
 * restart of a killed worker. A screenshot is kept in the test's temp dir (the path is printed).
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium, requireBrowserSetup } from "../helpers/browser.js";
import { RawClient } from "../helpers/clients.js";
import { type ServerProcess, startServer, until } from "../helpers/server.js";

const CLIENTS = 200;

describe("admin page (headless Chromium)", () => {
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let admin: string;
  const foreign: string[] = [];
  const clients: RawClient[] = [];
  let publishing = true;
  let publisher: Promise<void> = Promise.resolve();

  before(async () => {
    requireBrowserSetup();
    server = await startServer(["--workers", "2"]);
    admin = `http://127.0.0.1:${server.adminPort}`;
    browser = await launchChromium();
    page = await browser.newPage();
    // Nothing may leave the admin origin: no CDN, no font, no beacon.
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (!url.startsWith(`${admin}/`)) {
        foreign.push(url);
        return route.abort();
      }
      return route.continue();
    });
  });
  after(async () => {
    publishing = false;
    await publisher.catch(() => {});
    for (const c of clients) c.ws.terminate();
    await browser?.close().catch(() => {});
    assert.equal(await server.stop(), 0);
  });

  const text = async (id: string) => (await page.locator(`#${id}`).textContent()) ?? "";
  const number = async (id: string) => Number((await text(id)).replace(/[^\d.]/g, "")) || 0;

  it("shows the connections and a rising delivery rate while clients connect and a publisher runs", async () => {
    await page.goto(`${admin}/`);
    await until(async () => (await text("link")) === "live", 20_000, "the live feed");
    assert.equal(await number("connections"), 0);
    for (let i = 0; i < CLIENTS; i++) {
      const c = await RawClient.open(server.wsUrl);
      clients.push(c);
      await c.subscribe("admin-test");
    }
    publisher = (async () => {
      for (let n = 0; publishing; n++) {
        // Load only: a publish on a connection whose worker the next test kills may fail, and that is fine.
        await server.publish("admin-test", { n }).catch(() => {});
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await until(async () => (await number("connections")) === CLIENTS, 20_000, "200 connections on the page");
    await until(
      async () => (await number("deliveries-rate")) > 100,
      20_000,
      "deliveries per second above 100",
    );
    assert.ok((await number("published-rate")) > 0);
    assert.match(await text("fanout"), /\d/, "fan-out latency shown");
    const shot = join(mkdtempSync(join(tmpdir(), "switchboard-admin-")), "admin-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# admin page screenshot: ${shot}`);
  });

  it("shows the restart of a killed worker", async () => {
    assert.equal(await number("restarts"), 0);
    const status = (await (await fetch(`${admin}/status`)).json()) as { workers: { pid: number }[] };
    process.kill(status.workers[0]?.pid as number, "SIGKILL");
    await until(async () => (await number("restarts")) === 1, 30_000, "the restart on the page");
    await until(async () => (await text("workers-live")) === "2 / 2", 30_000, "both workers ready again");
  });

  it("finds channels by subscribers and by rate", async () => {
    await page.fill("#q", "admin");
    await until(async () => (await page.locator("#by-subs tr").count()) > 0, 15_000, "search results");
    assert.match((await page.locator("#by-subs tr").first().textContent()) ?? "", /admin-test/);
    await until(async () => (await page.locator("#by-rate tr").count()) > 0, 20_000, "rate results");
    assert.deepEqual(foreign, [], "no request left the admin origin");
  });
});
