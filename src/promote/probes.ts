/**
 * One-shot HTTP and TCP probes of a colour or of a HAProxy frontend.
 */
import http, { type IncomingHttpHeaders } from "node:http";
import net from "node:net";

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** GET without keep-alive; rejects on connection errors and timeouts. */
export function httpGet(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = 3000,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

/** True when nothing accepts TCP connections on host:port any more (a connect that hangs counts as open). */
export function portClosed(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect({ host, port });
    conn.setTimeout(2000);
    conn.on("connect", () => {
      conn.destroy();
      resolve(false);
    });
    conn.on("timeout", () => {
      conn.destroy();
      resolve(false);
    });
    conn.on("error", () => resolve(true));
  });
}
