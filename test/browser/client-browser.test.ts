import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import { launchChromium, requireBrowserSetup, type StaticSite, serveClient } from "../helpers/browser.js";
import { publishOnce, type ServerProcess, sleep, startServer, until } from "../helpers/server.js";

/**
 * The page an app would write: it imports the SDK as an ES module and uses the browser's own WebSocket (no
 * constructor passed). `?ws=` names the Switchboard server. The test drives it through window.sdk.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>switchboard client</title>
<script type="module">
import { Switchboard } from "/client/index.js";
const ws = new URLSearchParams(location.search).get("ws");
const log = { received: [], offsets: [], subscribed: [], gaps: [], states: [], errors: [] };
const sb = new Switchboard(ws, { minReconnectDelayMs: 100, maxReconnectDelayMs: 1000 });
sb.on("state", (s) => log.states.push(s));
sb.on("error", (e) => log.errors.push(String(e && e.message)));
window.sdk = {
  log,
  state: () => sb.state,
  connect: () => sb.connect(),
  disconnect: () => sb.disconnect(),
  subscribe(channel) {
    sb.subscribe(channel, {
      onMessage: (data, meta) => { log.received.push(data); log.offsets.push(meta.offset); },
      onSubscribed: (s) => log.subscribed.push(s),
      onGap: (g) => log.gaps.push(g),
    });
  },
  publish: (channel, data) => sb.publish(channel, data),
};
window.sdkReady = true;
</script>`;

type PageLog = {
  received: number[];
  offsets: number[];
  subscribed: { offset: number | null; epoch: string | null; recovered: boolean }[];
  gaps: unknown[];
  states: string[];
  errors: string[];
};

type SdkWindow = {
  sdk: {
    log: PageLog;
    state(): string;
    connect(): void;
    disconnect(): void;
    subscribe(channel: string): void;
    publish(
      channel: string,
      data: unknown,
    ): Promise<{ offset: number; epoch: string | null; duplicate: boolean }>;
  };
  sdkReady?: boolean;
};

const pageLog = (page: Page) => page.evaluate(() => (globalThis as unknown as SdkWindow).sdk.log);

describe("client SDK in headless chromium", () => {
  let browser: Browser;
  let site: StaticSite;
  let server: ServerProcess;

  before(async () => {
    requireBrowserSetup();
    server = await startServer(["--workers", "2", "--drain-timeout", "4000", "--history-size", "1000"]);
    site = await serveClient({ "/": PAGE });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    await server?.stop();
  });

  async function openPage(): Promise<Page> {
    const page = await browser.newPage();
    page.on("pageerror", (err) => console.error("page error:", err));
    await page.goto(`${site.url}/?ws=${encodeURIComponent(server.wsUrl)}`);
    await page.waitForFunction(() => (globalThis as unknown as SdkWindow).sdkReady === true, null, {
      timeout: 20_000,
    });
    return page;
  }

  it("connects with the browser's WebSocket, subscribes, receives and publishes", async () => {
    const page = await openPage();
    try {
      await page.evaluate(() => {
        const { sdk } = globalThis as unknown as SdkWindow;
        sdk.subscribe("chat:browser");
        sdk.connect();
      });
      await until(async () => (await pageLog(page)).subscribed.length === 1, 10_000, "the subscribe ack");
      for (const n of [1, 2]) await server.publish("chat:browser", n);
      const ack = await page.evaluate(() =>
        (globalThis as unknown as SdkWindow).sdk.publish("chat:browser", 3),
      );
      assert.equal(ack.offset, 3);
      assert.equal(ack.duplicate, false);
      await until(async () => (await pageLog(page)).received.length === 3, 10_000, "three messages");
      const log = await pageLog(page);
      assert.deepEqual(log.received, [1, 2, 3]);
      assert.deepEqual(log.offsets, [1, 2, 3]);
      assert.equal(typeof log.subscribed[0]?.epoch, "string");
      assert.equal(await page.evaluate(() => (globalThis as unknown as SdkWindow).sdk.state()), "connected");
    } finally {
      await page.evaluate(() => (globalThis as unknown as SdkWindow).sdk.disconnect());
      await page.close();
    }
  });

  it("survives a drain (SIGHUP reload) and resumes with nothing missing or duplicated", async () => {
    const pages = await Promise.all([openPage(), openPage()]);
    try {
      for (const page of pages) {
        await page.evaluate(() => {
          const { sdk } = globalThis as unknown as SdkWindow;
          sdk.subscribe("browser:reload");
          sdk.connect();
        });
      }
      for (const page of pages) {
        await until(async () => (await pageLog(page)).subscribed.length === 1, 10_000, "the subscribe ack");
      }
      let sent = 0;
      let stopped = false;
      const stream = (async () => {
        while (!stopped) {
          await publishOnce(server, "browser:reload", sent + 1);
          sent += 1;
          await sleep(20);
        }
      })();
      await until(() => sent >= 20, 10_000, "the stream running");
      server.child.kill("SIGHUP");
      await server.waitForLog((l) => l.msg === "rolling reload done", 60_000);
      const afterReload = sent;
      await until(() => sent >= afterReload + 20, 10_000, "more messages after the reload");
      stopped = true;
      await stream;
      const total = sent;
      for (const page of pages) {
        await until(
          async () => (await pageLog(page)).received.length >= total,
          20_000,
          `${total} messages`,
        ).catch(() => {});
      }
      for (const [i, page] of pages.entries()) {
        const log = await pageLog(page);
        const seen = new Set(log.received);
        let missing = 0;
        for (let n = 1; n <= total; n++) if (!seen.has(n)) missing += 1;
        const duplicates = log.received.length - seen.size;
        const inOrder = log.received.every((n, j) => j === 0 || n > (log.received[j - 1] as number));
        assert.deepEqual(
          { missing, duplicates, inOrder },
          { missing: 0, duplicates: 0, inOrder: true },
          `page ${i}`,
        );
        assert.ok(
          log.states.filter((s) => s === "connected").length >= 2,
          `page ${i} reconnected after the drain`,
        );
        assert.ok(
          log.subscribed.slice(1).some((s) => s.recovered),
          `page ${i} resumed with recovered:true (${JSON.stringify(log.subscribed)})`,
        );
        assert.deepEqual(log.gaps, []);
      }
    } finally {
      for (const page of pages) await page.close();
    }
  });
});
