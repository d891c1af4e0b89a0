/**
 * Entry of a load-client process (forked by LoadFleet): executes commands received over IPC.
 * Exits when the parent disconnects, so a crashed runner never leaves clients behind.
 */
import { ConnPool } from "./conn-pool.js";
import { isLoadRequest, type LoadEvent, type LoadRequest, type LoadResult } from "./ipc-messages.js";
import { runPublishLoad } from "./publish-load.js";

const pool = new ConnPool();
const PROGRESS_EVERY_MS = 250;
let lastProgress = 0;

function send(event: LoadEvent): void {
  process.send?.(event);
}

pool.onProgress = (done, failed, final) => {
  const now = performance.now();
  if (!final && now - lastProgress < PROGRESS_EVERY_MS) return;
  lastProgress = now;
  send({ evt: "progress", done, failed });
};

async function execute(req: LoadRequest): Promise<LoadResult> {
  switch (req.cmd) {
    case "connect":
      return pool.connect(req);
    case "subscribe":
      return pool.subscribe(req);
    case "received":
      return pool.stats.received(req.step);
    case "take":
      return pool.stats.take(req.step);
    case "publish-load":
      return runPublishLoad(req);
    case "status":
      return pool.status();
    case "close":
      pool.close();
      return null;
  }
}

process.on("message", (msg: unknown) => {
  if (!isLoadRequest(msg)) return;
  execute(msg).then(
    (result) => send({ evt: "reply", id: msg.id, ok: true, result }),
    (err: unknown) =>
      send({ evt: "reply", id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});

process.on("disconnect", () => {
  pool.close();
  process.exit(0);
});
