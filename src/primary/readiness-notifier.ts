import { execFile } from "node:child_process";
import type { Logger } from "../log.js";

/**
 * Tells the service manager the primary is ready: pm2 (`wait_ready`) listens for a 'ready' IPC message,
 * systemd (`Type=notify`, `NotifyAccess=all`) for READY=1 on $NOTIFY_SOCKET, sent here with systemd-notify.
 */
export function notifyReady(log: Logger): void {
  if (process.send) process.send("ready");
  if (process.env.NOTIFY_SOCKET) {
    execFile("systemd-notify", ["--ready", `--pid=${process.pid}`], (err) => {
      if (err) log.warn({ err }, "systemd-notify --ready failed");
    });
  }
}

/** Tells systemd a stop is under way (harmless elsewhere). */
export function notifyStopping(): void {
  if (process.env.NOTIFY_SOCKET) execFile("systemd-notify", ["STOPPING=1"], () => {});
}
