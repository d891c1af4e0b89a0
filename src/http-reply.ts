import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";

/**
 * Ends a raw socket with one complete JSON HTTP response: for replies written outside node:http (a refused
 * upgrade, the balancer's own answers). Cache-Control: no-store keeps probes and errors out of caches.
 * `extraHeaders`: whole header lines, each ending in \r\n (a Retry-After).
 */
export function endWithJson(socket: Duplex, status: number, body: unknown, extraHeaders = ""): void {
  const text = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(text)}\r\nCache-Control: no-store\r\n${extraHeaders}` +
      `Connection: close\r\n\r\n${text}`,
  );
}
