/**
 * Every seed that once broke an invariant, kept as a scenario in
 * sim/scenarios/regressions/: each must hold now.
 */
import assert from "node:assert/strict";
import { loadScenario } from "./scenario.ts";
import { explain, runQuietly } from "./test_helpers.ts";

const dir = new URL("./scenarios/regressions/", import.meta.url);
const files: string[] = [];
for await (const e of Deno.readDir(dir)) {
  if (e.isFile && e.name.endsWith(".json")) files.push(e.name);
}
files.sort();

for (const name of files) {
  Deno.test(`regression ${name.replace(/\.json$/, "")}`, async () => {
    const r = await loadScenario(new URL(name, dir).pathname);
    const { summary } = await runQuietly(r);
    assert.equal(summary.violations.length, 0, explain(summary));
  });
}
