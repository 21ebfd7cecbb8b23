/**
 * Helpers for the simulator's tests: a window of a shipped scenario, run
 * without a log file, with its summary and world.
 */
import { loadScenario, type ResolvedScenario, type RunMode, windowOf } from "./scenario.ts";
import { runScenario, type RunSummary } from "./run.ts";
import type { WorldResult } from "./world/world.ts";

/** The path of a shipped scenario. */
export function scenarioPath(name: string): string {
  return new URL(`./scenarios/${name}.json`, import.meta.url).pathname;
}

/** Loads shipped scenario `name`, optionally cut to `hours` from `fromMin` after its start. */
export async function shipped(
  name: string,
  window?: { fromMin: number; hours: number },
): Promise<ResolvedScenario> {
  const r = await loadScenario(scenarioPath(name));
  return window ? windowOf(r, window.fromMin, window.hours) : r;
}

/** Runs `resolved` without writing a log. */
export async function runQuietly(
  resolved: ResolvedScenario,
  options: { seed?: number; mode?: RunMode; idempotence?: boolean } = {},
): Promise<{ summary: RunSummary; world: WorldResult }> {
  return await runScenario({ resolved, source: "test", logPath: null, ...options });
}

/** The violations of a summary, one per line, for assertion messages. */
export function explain(s: RunSummary): string {
  return s.violations.map((v) => `${v.invariant} at ${v.at}: ${v.message}`).join("\n");
}

/** A short, busy day with a partition and a power loss mid-lunch. */
export const determinismScenario = {
  name: "determinism",
  seed: 11,
  start: "2025-03-03T12:00:00Z",
  durationH: 0.3,
  drainMaxMin: 60,
  machine: { storageSlots: 12, fullPerSlot: 2 },
  customers: { baseRatePerH: 10, noShowShare: 0, mistypeShare: 0.3 },
  faults: [
    { type: "natsPartition", atMin: 3, component: "oven", forMin: 1 },
    { type: "powerLoss", atMin: 8, restartAfterS: 30 },
  ],
};
