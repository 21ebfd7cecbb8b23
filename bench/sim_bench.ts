/**
 * Simulator figures: simulated time per wall second for one machine on the
 * lunch-rush scenario (goal: an 18-hour machine-day with ~270 customers in
 * under 2 s, ≥ 30,000×), events per second, swarm seeds per minute, and the
 * peak memory of a one-day run.
 *
 *   deno run -A bench/sim_bench.ts [--quick] [--seeds N] [--json]
 */
import { cpuUsage } from "node:process";
import { parseArgs } from "node:util";
import { loadScenario, windowOf } from "../sim/scenario.ts";
import { runScenario } from "../sim/run.ts";
import { runSwarm } from "../sim/swarm.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    seeds: { type: "string" },
    json: { type: "boolean" },
  },
  strict: true,
});

const goalSpeedup = 30_000;
const file = new URL("../sim/scenarios/lunch-rush.json", import.meta.url).pathname;
const full = await loadScenario(file);
const resolved = values.quick ? windowOf(full, 300, 2) : full;

let peakRss = 0;
let peakHeap = 0;
const sampleMemory = () => {
  const m = Deno.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
};
sampleMemory();
// Wall time on a shared host moves with its other load; CPU time much less.
const cpuBefore = cpuUsage();
const { summary } = await runScenario({
  resolved,
  source: file,
  logPath: null,
  onProgress: sampleMemory,
});
sampleMemory();
const cpu = cpuUsage(cpuBefore);
const cpuS = Math.round((cpu.user + cpu.system) / 100_000) / 10;

const seeds = Number(values.seeds ?? (values.quick ? 6 : 40));
const swarm = await runSwarm({
  runs: seeds,
  workers: 2,
  baseSeed: 1,
  mode: "liveness",
  progress: false,
});

const mib = (b: number) => Math.round(b / 1048576);
const figures = {
  scenario: summary.scenario,
  simulatedH: Math.round(summary.simulatedMs / 36_000) / 100,
  wallS: Math.round(summary.wallMs / 100) / 10,
  cpuS,
  speedup: summary.speedup,
  cpuSpeedup: Math.round(summary.simulatedMs / (cpuS * 1000)),
  goalSpeedup,
  goalMet: summary.speedup >= goalSpeedup,
  customers: summary.customers,
  orders: summary.orders,
  dispensed: summary.dispensed,
  eventsPerSecond: summary.eventsPerSecond,
  timersFired: summary.timersFired,
  busMessages: summary.busMessages,
  logLines: summary.logLines,
  peakRssMiB: mib(peakRss),
  peakHeapMiB: mib(peakHeap),
  swarmSeeds: swarm.runs,
  swarmSeedsPerMinute: swarm.seedsPerMinute,
  swarmSimulatedHPerSeed: Math.round(swarm.simulatedH / Math.max(1, swarm.runs) * 100) / 100,
  swarmFailures: swarm.failures,
  violations: summary.violations.length,
};

if (values.json) console.log(JSON.stringify(figures));
else {
  console.log(`sim bench (${values.quick ? "quick: 2 h of lunch-rush" : "lunch-rush, 18 h"})`);
  console.log(
    `  one machine   ${figures.simulatedH} h simulated in ${figures.wallS} s: ${figures.speedup}x real time (goal ${goalSpeedup}x: ${
      figures.goalMet ? "met" : "missed"
    })`,
  );
  console.log(
    `  cpu           ${figures.cpuS} s of CPU: ${figures.cpuSpeedup}x simulated per CPU second`,
  );
  console.log(
    `  workload      ${figures.customers} customers, ${figures.orders} orders, ${figures.dispensed} dispensed`,
  );
  console.log(
    `  events        ${figures.eventsPerSecond} events/s (${figures.timersFired} timers, ${figures.busMessages} bus messages)`,
  );
  console.log(
    `  memory        peak RSS ${figures.peakRssMiB} MiB, heap ${figures.peakHeapMiB} MiB`,
  );
  console.log(
    `  swarm         ${figures.swarmSeedsPerMinute} seeds/min on 2 workers (${figures.swarmSeeds} seeds, ${figures.swarmSimulatedHPerSeed} h each, ${figures.swarmFailures} failing)`,
  );
}
