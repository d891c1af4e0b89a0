/**
 * `npm run fuzz [-- --inputs N] [--seed S]`: one seeded fuzz run against a freshly built server (run-fuzz.ts);
 * exits 1 when it found a problem, printing the seed that replays it.
 */
import { parseArgs } from "node:util";
import { runFuzz } from "./run-fuzz.js";

const { values } = parseArgs({ options: { inputs: { type: "string" }, seed: { type: "string" } } });
const inputs = Number(values.inputs ?? 30_000);
const seed = Number(values.seed ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isSafeInteger(inputs) || inputs < 3 || !Number.isSafeInteger(seed)) {
  process.stderr.write("usage: npm run fuzz -- [--inputs N (at least 3)] [--seed S]\n");
  process.exit(2);
}
process.stdout.write(`fuzz: seed ${seed}, ${inputs} inputs\n`);
const report = await runFuzz({ seed, inputs });
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
if (report.problems.length > 0) {
  process.stdout.write(
    `fuzz: ${report.problems.length} problems; replay with: npm run fuzz -- --seed ${seed} --inputs ${inputs}\n`,
  );
  process.exitCode = 1;
}
