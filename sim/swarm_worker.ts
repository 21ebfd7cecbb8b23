/**
 * A swarm worker: runs the seeds it is sent, one at a time, without writing
 * logs (the hash is still taken), and posts each outcome back.
 */
import { parseScenario, type RunMode } from "./scenario.ts";
import { runScenario } from "./run.ts";
import { swarmScenario } from "./swarm_scenario.ts";

/** A seed to run. */
export interface SwarmJob {
  seed: number;
  mode: RunMode;
  idempotence?: boolean;
}

/** What one seed gave. */
export interface SwarmOutcome {
  seed: number;
  violations: number;
  first: { invariant: string; at: string; message: string } | null;
  replay: string;
  simulatedMs: number;
  orders: number;
  dispensed: number;
  logSha256: string;
}

/** Runs one seed of the swarm. */
export async function runSwarmSeed(job: SwarmJob): Promise<SwarmOutcome> {
  const resolved = parseScenario(swarmScenario(job.seed, job.mode), `swarm seed ${job.seed}`);
  const { summary } = await runScenario({
    resolved,
    source: "swarm",
    seed: job.seed,
    mode: job.mode,
    idempotence: job.idempotence ?? false,
    logPath: null,
  });
  const first = summary.violations[0];
  return {
    seed: job.seed,
    violations: summary.violations.length,
    first: first ? { invariant: first.invariant, at: first.at, message: first.message } : null,
    replay: summary.replay,
    simulatedMs: summary.simulatedMs,
    orders: summary.orders,
    dispensed: summary.dispensed,
    logSha256: summary.logSha256,
  };
}

/** The worker's side of the channel, when this module runs in a Worker. */
interface WorkerScope {
  onmessage: ((e: MessageEvent<SwarmJob>) => void) | null;
  postMessage(outcome: SwarmOutcome): void;
}

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
  "undefined";
if (inWorker) {
  const scope = globalThis as unknown as WorkerScope;
  scope.onmessage = async (e) => {
    scope.postMessage(await runSwarmSeed(e.data));
  };
}
