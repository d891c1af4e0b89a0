/**
 * HAProxy runtime API client: one command per connection (non-interactive mode), the answer read until EOF.
 */
import net from "node:net";

/** Sends one runtime API command to a unix socket path or a HOST:PORT and returns the answer. */
export function runtimeCommand(socket: string, command: string, timeoutMs = 5000): Promise<string> {
  // HAProxy runs each ";"-separated part of a line as a command of its own, and a newline ends one: exactly one
  // command goes out. (The names in it were checked when the options were read; this is the last guard.)
  if (/[;\r\n]/.test(command)) {
    return Promise.reject(new Error(`refusing to send ${JSON.stringify(command)}: not a single command`));
  }
  return new Promise((resolve, reject) => {
    const conn = net.connect(connectOptions(socket));
    let answer = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`${socket}: no answer to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding("utf8");
    conn.on("connect", () => conn.end(`${command}\n`));
    conn.on("data", (chunk: string) => {
      answer += chunk;
    });
    conn.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`${socket}: ${err.message}`));
    });
    conn.on("close", () => {
      clearTimeout(timer);
      resolve(answer);
    });
  });
}

/** A command that must answer nothing (HAProxy prints text only on errors for `set server`). */
export async function runtimeSet(socket: string, command: string): Promise<void> {
  const answer = (await runtimeCommand(socket, command)).trim();
  if (answer !== "") throw new Error(`${socket}: "${command}" failed: ${answer}`);
}

/** HOST:PORT (a bracketed IPv6 host too) is TCP; anything else is a unix socket path. */
function connectOptions(socket: string): net.NetConnectOpts {
  if (!/^[^/]+:\d+$/.test(socket)) return { path: socket };
  const colon = socket.lastIndexOf(":");
  return { host: socket.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(socket.slice(colon + 1)) };
}
