/**
 * Step 5: the new colour answers through every HAProxy, pinned to it by the persistence cookie.
 */
import type { Colour } from "./colours.js";
import { messageOf } from "./errors.js";
import { serverName } from "./haproxy-colours.js";
import type { PromoteOptions } from "./options.js";
import { httpGet } from "./probes.js";
import { step } from "./progress.js";
import { wsPing } from "./ws-ping.js";

/** GET /ready and /health, then a /ws ping, via each --haproxy-url; each must be served by `colour`. */
export async function smokeTest(
  opts: Pick<PromoteOptions, "serverTemplate" | "ports" | "cookie" | "haproxyUrls">,
  colour: Colour,
): Promise<void> {
  const name = serverName(opts, colour);
  // The cookie pins to a server in drain; the header makes HAProxy honour it (only from admin_src).
  const headers = { cookie: `${opts.cookie}=${name}`, "x-switchboard-pin": "1" };
  for (const base of opts.haproxyUrls) {
    for (const p of ["/ready", "/health"]) {
      const res = await httpGet(new URL(p, base).href, headers);
      const servedBy = res.headers["x-switchboard-server"];
      if (res.status !== 200)
        throw new Error(`smoke test: GET ${base}${p} via HAProxy answered ${res.status}`);
      if (servedBy !== name) {
        throw new Error(
          `smoke test: GET ${base}${p} was served by ${servedBy ?? "(no X-Switchboard-Server header)"}, not ${name}`,
        );
      }
    }
    const wsUrl = new URL("/ws", base);
    wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
    try {
      await wsPing(wsUrl.href, headers, name);
    } catch (err) {
      throw new Error(`smoke test: /ws via ${base}: ${messageOf(err)}`);
    }
    step(`smoke test via ${base} passed: /ready 200, /health 200, /ws ping → pong, all served by ${name}`);
  }
}
