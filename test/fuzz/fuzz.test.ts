import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runFuzz } from "./run-fuzz.js";

/** The bounded run of `npm test`: a fresh seed each time (printed), about half a minute. */
describe("fuzz (bounded run; npm run fuzz for a long one)", { timeout: 180_000 }, () => {
  it("answers hostile frames, packets and requests with documented codes only, and loses nothing meanwhile", async (t) => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const report = await runFuzz({ seed, inputs: Number(process.env.FUZZ_INPUTS ?? 30_000) });
    t.diagnostic(
      `seed ${report.seed}: ${report.inputs} inputs in ${report.seconds} s, restarts ${report.restarts}, ` +
        `RSS ${report.rssBeforeMiB} → ${report.rssAfterMiB} MiB, sentinel ${report.sentinelMessages} messages; ` +
        JSON.stringify(report.counts),
    );
    assert.deepEqual(
      report.problems,
      [],
      `replay: FUZZ_SEED=${report.seed} npm run fuzz -- --seed ${report.seed}`,
    );
  });
});
