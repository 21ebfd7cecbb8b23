/**
 * Same scenario and seed, same event log to the byte: twice in one process,
 * the second time with wall time and ambient randomness tampered with (the
 * two-process check is in determinism_process_test.ts).
 */
import assert from "node:assert/strict";
import { parseScenario } from "./scenario.ts";
import { determinismScenario as scenario, explain, runQuietly } from "./test_helpers.ts";

Deno.test("determinism: the same seed gives the same log, in one process", async (t) => {
  const first = await runQuietly(parseScenario(scenario));
  assert.equal(first.summary.violations.length, 0, explain(first.summary));
  assert.equal(first.summary.boots, 2);
  assert.ok(first.summary.orders >= 2, `orders ${first.summary.orders}`);

  await t.step("again, with wall time and Math.random tampered with", async () => {
    const realNow = Date.now;
    const realRandom = Math.random;
    let n = 0;
    Date.now = () => 4_000_000_000_000 + n++ * 7919;
    Math.random = () => (n++ * 0.6180339887) % 1;
    try {
      const again = await runQuietly(parseScenario(scenario));
      assert.equal(again.summary.logSha256, first.summary.logSha256);
      assert.equal(again.summary.logLines, first.summary.logLines);
    } finally {
      Date.now = realNow;
      Math.random = realRandom;
    }
  });
});

Deno.test("determinism: another seed gives another log", async () => {
  const short = { ...scenario, durationH: 0.05, faults: [], customers: { baseRatePerH: 30 } };
  const a = await runQuietly(parseScenario(short), { seed: 1 });
  const b = await runQuietly(parseScenario(short), { seed: 2 });
  assert.notEqual(a.summary.logSha256, b.summary.logSha256);
});
