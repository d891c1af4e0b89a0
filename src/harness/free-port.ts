import { once } from "node:events";
import { createServer } from "node:net";

/** A free loopback port: bind port 0, read it, release it (for tools that cannot be told `--port 0`, like Redis). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}
