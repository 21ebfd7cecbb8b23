/**
 * Every seed that once broke an invariant, kept as a scenario in
 * sim/scenarios/regressions/: each must hold now. Split over three test files
 * (sim/regressions_*_test.ts) by their place in the folder, to keep each fast.
 */
import assert from "node:assert/strict";
import { loadScenario } from "./scenario.ts";
import { explain, runQuietly } from "./test_helpers.ts";

const dir = new URL("./scenarios/regressions/", import.meta.url);

/** Registers a test for every regression scenario whose index is `group` modulo 3. */
export async function regressionTests(group: 0 | 1 | 2): Promise<void> {
  const files: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".json")) files.push(e.name);
  }
  files.sort();
  files.forEach((name, i) => {
    if (i % 3 !== group) return;
    Deno.test(`regression ${name.replace(/\.json$/, "")}`, async () => {
      const r = await loadScenario(new URL(name, dir).pathname);
      const { summary } = await runQuietly(r);
      assert.equal(summary.violations.length, 0, explain(summary));
    });
  });
}
