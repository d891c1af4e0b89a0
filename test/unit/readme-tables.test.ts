import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { errorCodes } from "../../src/errors.js";
import { ROOT } from "../helpers/server.js";

/** The cells of every Markdown table row in `text`, trimmed (the formatter pads columns). */
function tableRows(text: string): string[][] {
  return text
    .split("\n")
    .filter((line) => line.startsWith("|"))
    .map((line) =>
      line
        .slice(1, -1)
        .split(" | ")
        .map((cell) => cell.trim()),
    );
}

describe("error-code table", () => {
  it("is the same in README.md as in src/errors.ts", () => {
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const start = readme.indexOf("## Error codes");
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
    const rows = tableRows(section)
      .filter((cells) => /^`[a-z_]+`$/.test(cells[0] ?? ""))
      .map(([code, http, close, doc]) => ({
        code: code?.slice(1, -1),
        http: Number(http),
        close: close === "—" ? null : Number(close),
        doc,
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
    const rows = tableRows(readme.slice(readme.indexOf("## Configuration")));
    for (const s of Object.values(settings)) {
      const row = rows.find((cells) => cells[0] === `\`--${s.flag}\``);
      assert.deepEqual([row?.[1], row?.[3]], [`\`${s.env}\``, s.doc], `README row for --${s.flag}`);
    }
  });
});

describe("close-code table", () => {
  it("is the same in README.md as in src/errors.ts", async () => {
    const { closeCodes } = await import("../../src/errors.js");
    const readme = readFileSync(`${ROOT}/README.md`, "utf8");
    const start = readme.indexOf("WebSocket close codes on `/ws`");
    const rows = tableRows(readme.slice(start, readme.indexOf("\n## ", start)))
      .filter((cells) => /^\d{4}$/.test(cells[0] ?? ""))
      .map(([code, doc]) => [Number(code), doc]);
    assert.deepEqual(
      rows,
      Object.entries(closeCodes).map(([code, doc]) => [Number(code), doc]),
    );
  });
});
