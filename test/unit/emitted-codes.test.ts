/**
 * Every error code, HTTP status and close code the server's source can emit is in the one table (src/errors.ts),
 * and every code of the table is emitted somewhere: read off the source, so a new `throw` with a new code, or a
 * close with a bare number, fails here until the table (and README, readme-tables.test.ts) says what it means.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { closeCodes, errorCodes } from "../../src/errors.js";
import { ROOT } from "../helpers/server.js";

/** The server's own source: what runs in the primary and the workers (not the SDK, the bench or the promote tool). */
const SERVER_DIRS = ["src/primary", "src/worker", "src/bus", "src/protocol", "src/hooks"];
const SERVER_FILES = ["src/readiness.ts", "src/http-reply.ts", "src/errors.ts"];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const sources = [
  ...SERVER_DIRS.flatMap((d) => files(join(ROOT, d))),
  ...SERVER_FILES.map((f) => join(ROOT, f)),
].map((path) => ({ path: relative(ROOT, path), text: readFileSync(path, "utf8") }));

/** String literals passed where an error code goes: SwitchboardError, errorReply, the gateways' error helpers. */
const CODE_SITES = [
  /new SwitchboardError\(\s*"([a-z_]+)"/g,
  /errorReply\(\s*"([a-z_]+)"/g,
  /#error\(\s*conn,\s*"([a-z_]+)"/g,
  /#fail\(\s*ack,\s*"([a-z_]+)"/g,
  /counters\.error\(\s*"([a-z_]+)"/g,
  /error:\s*"([a-z_]+)"\s*as const/g,
  /fail\(\s*"([a-z_]+)"/g,
  /errorCodes\.([a-z_]+)\./g,
];

function emittedCodes(): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  for (const { path, text } of sources) {
    if (path === "src/errors.ts") continue;
    for (const site of CODE_SITES) {
      for (const m of text.matchAll(site)) {
        const where = seen.get(m[1] as string) ?? [];
        where.push(path);
        seen.set(m[1] as string, where);
      }
    }
  }
  return seen;
}

describe("codes the server emits", () => {
  it("are each in the error table, and each code of the table is emitted somewhere", () => {
    const emitted = emittedCodes();
    const unknown = [...emitted.keys()].filter((c) => !(c in errorCodes));
    assert.deepEqual(
      unknown,
      [],
      `codes emitted but not in the table: ${unknown.map((c) => `${c} (${emitted.get(c)})`)}`,
    );
    const unused = Object.keys(errorCodes).filter((c) => !emitted.has(c));
    assert.deepEqual(unused, [], "codes in the table that nothing emits");
  });

  it("close WebSocket connections only with the close codes of the table", () => {
    const closes: string[] = [];
    for (const { path, text } of sources) {
      for (const m of text.matchAll(/\.close\(\s*(\d{4})/g)) closes.push(`${m[1]} in ${path}`);
    }
    assert.deepEqual(closes, [], "close with a code from errorCodes or closeCodes, not a bare number");
    for (const { close } of Object.values(errorCodes))
      if (close !== null) assert.ok(close in closeCodes, `close ${close}`);
    // ws closes 1002, 1007 and 1009 itself; the server's own closes come from the error table or CLOSE_RESTART.
    assert.ok(1012 in closeCodes);
  });

  it("answer HTTP only with statuses of the table (and 200, and README's 307 for a session on a reused connection)", () => {
    const statuses = new Set<number>([200, 307, ...Object.values(errorCodes).map((e) => e.http)]);
    const literal: string[] = [];
    for (const { path, text } of sources) {
      for (const m of text.matchAll(/(?:writeHead|endWithJson\([^,]+,)\s*\(?\s*(\d{3})\b/g)) {
        if (!statuses.has(Number(m[1]))) literal.push(`${m[1]} in ${path}`);
      }
    }
    assert.deepEqual(literal, []);
  });
});
