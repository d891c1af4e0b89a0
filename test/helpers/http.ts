import http from "node:http";
import WebSocket from "ws";

export type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string };

/**
 * One HTTP request: status, headers and body. Without `agent` it goes over a fresh connection (agent: false);
 * pass a keep-alive Agent to reuse connections on purpose.
 */
export function request(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: http.Agent | false;
    timeoutMs?: number;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers,
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${options.method ?? "GET"} ${url}: request timeout`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** GET on a fresh connection, so the primary answers it (as HAProxy's checks see it), not a kept-alive worker. */
export async function getFresh(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url, { headers: { connection: "close" } });
  return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
}

export type Upgrade = { status: number; retryAfter: string | undefined; body: string; ws: WebSocket | null };

/** Opens a WebSocket: 101 with the socket (the caller closes it), or the refusal's status, Retry-After and body. */
export function tryUpgrade(url: string, options?: WebSocket.ClientOptions): Promise<Upgrade> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (c: Buffer) => {
        body += c;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"], body, ws: null }),
      );
    });
    ws.once("open", () => resolve({ status: 101, retryAfter: undefined, body: "", ws }));
    ws.on("error", () => resolve({ status: 0, retryAfter: undefined, body: "", ws: null }));
  });
}
