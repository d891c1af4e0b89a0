import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { errorCodes } from "../../src/errors.js";
import { ROOT } from "../helpers/server.js";

describe("error-code table", () => {
  it("is the same in README.md as in src/errors.ts", () => {
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const section = readme.slice(readme.indexOf("## Error codes"));
    const rows = [...section.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (\d{4}|—) \| (.+) \|$/gm)].map((m) => ({
      code: m[1],
      http: Number(m[2]),
      close: m[3] === "—" ? null : Number(m[3]),
      doc: m[4],
    }));
    const expected = Object.entries(errorCodes).map(([code, e]) => ({
      code,
      http: e.http,
      close: e.close,
      doc: e.doc,
    }));
    assert.deepEqual(rows, expected);
  });
});

describe("configuration table", () => {
  it("lists every setting in README.md with its flag, variable and doc", async () => {
    const { settings } = await import("../../src/config.js");
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    for (const s of Object.values(settings)) {
      assert.ok(readme.includes(`| \`--${s.flag}\` | \`${s.env}\` |`), `README lists --${s.flag}`);
      assert.ok(readme.includes(s.doc), `README documents --${s.flag}`);
    }
  });
});
