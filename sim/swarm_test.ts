import assert from "node:assert/strict";
import { parseScenario } from "./scenario.ts";
import { swarmScenario } from "./swarm_scenario.ts";
import { runSwarmSeed } from "./swarm_worker.ts";
import { runSwarm } from "./swarm.ts";
import { runQuietly } from "./test_helpers.ts";

Deno.test("swarm: every seed gives a valid scenario in both modes", () => {
  for (let seed = 0; seed < 200; seed++) {
    for (const mode of ["safety", "liveness"] as const) {
      const r = parseScenario(swarmScenario(seed, mode), `swarm seed ${seed}`);
      assert.equal(r.scenario.mode, mode);
      if (mode === "liveness") assert.ok(r.scenario.faults.length <= 4);
    }
  }
  assert.deepEqual(swarmScenario(7, "safety"), swarmScenario(7, "safety"));
  assert.notDeepEqual(swarmScenario(7, "safety"), swarmScenario(8, "safety"));
});

Deno.test("swarm: a seed replays exactly through `run swarm --seed N`", async () => {
  const outcome = await runSwarmSeed({ seed: 2, mode: "liveness" });
  const replay = await runQuietly(parseScenario(swarmScenario(2, "liveness")), { seed: 2 });
  assert.equal(replay.summary.logSha256, outcome.logSha256);
  assert.equal(outcome.replay, "deno task sim run swarm --seed 2");
  assert.equal(outcome.violations, 0, JSON.stringify(outcome.first));
});

Deno.test("swarm: seeds run in workers and come back summed up", async () => {
  const r = await runSwarm({ runs: 2, workers: 2, baseSeed: 4, mode: "liveness", progress: false });
  assert.equal(r.runs, 2);
  assert.equal(r.failures, r.violations.length);
  assert.ok(r.simulatedH > 0);
  assert.ok(r.seedsPerMinute > 0);
  for (const f of r.violations) assert.match(f.replay, /^deno task sim run swarm --seed \d+/);
});
