/**
 * The smoke test's WebSocket round trip: the only use of `ws`, a production dependency of the release.
 */
import type { IncomingMessage } from "node:http";
import type { RawData } from "ws";

const PING_ID = "promote-smoke";

/** Opens /ws with `headers` (pinned to one server), checks who served it, sends a ping, expects the pong. */
export async function wsPing(
  url: string,
  headers: Record<string, string>,
  expectServer: string,
  timeoutMs = 5000,
): Promise<void> {
  // Loaded only here, so --status and --save-state run even where `ws` is not installed.
  const { WebSocket } = await import("ws");
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no pong within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on("unexpected-response", (_req, res: IncomingMessage) =>
      fail(new Error(`upgrade answered HTTP ${res.statusCode}`)),
    );
    ws.on("error", fail);
    ws.on("upgrade", (res: IncomingMessage) => {
      const servedBy = res.headers["x-switchboard-server"];
      if (servedBy !== expectServer) {
        fail(new Error(`upgrade served by ${servedBy ?? "(no X-Switchboard-Server header)"}`));
      }
    });
    ws.on("open", () => ws.send(JSON.stringify({ type: "ping", id: PING_ID })));
    ws.on("message", (data: RawData) => {
      if (isOurPong(data)) {
        clearTimeout(timer);
        ws.close(1000);
        resolve();
      }
    });
  });
}

/** True for the pong answering our ping; other frames (and non-JSON ones) are ignored. */
function isOurPong(data: RawData): boolean {
  let frame: unknown;
  try {
    frame = JSON.parse(String(data));
  } catch {
    return false;
  }
  return (
    typeof frame === "object" &&
    frame !== null &&
    "type" in frame &&
    frame.type === "pong" &&
    "id" in frame &&
    frame.id === PING_ID
  );
}
