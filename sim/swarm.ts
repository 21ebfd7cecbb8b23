/**
 * The swarm: many random seeds, each a short random day with a random fault
 * schedule (sim/swarm_scenario.ts), run in parallel workers. Every failing
 * seed comes back with the command that replays it.
 */
import type { RunMode } from "./scenario.ts";
import type { SwarmJob, SwarmOutcome } from "./swarm_worker.ts";
import { stopwatch } from "./world/stopwatch.ts";

/** Options of {@linkcode runSwarm}. */
export interface SwarmOptions {
  runs: number;
  workers: number;
  /** Seeds are baseSeed, baseSeed + 1, … */
  baseSeed: number;
  mode: RunMode;
  /** The idempotence workload: kiosks resend after timeouts, the bus duplicates. */
  idempotence?: boolean;
  /** Writes progress to stderr. */
  progress: boolean;
}

/** A failing seed. */
export interface SwarmFailure {
  seed: number;
  invariant: string;
  at: string;
  message: string;
  violations: number;
  replay: string;
}

/** What a swarm found. */
export interface SwarmResult {
  runs: number;
  failures: number;
  mode: RunMode;
  baseSeed: number;
  workers: number;
  wallMs: number;
  seedsPerMinute: number;
  /** Simulated hours over all runs. */
  simulatedH: number;
  orders: number;
  dispensed: number;
  violations: SwarmFailure[];
}

const encoder = new TextEncoder();

/** Runs the swarm in `o.workers` Deno workers. */
export async function runSwarm(o: SwarmOptions): Promise<SwarmResult> {
  const elapsedMs = stopwatch();
  const seeds = Array.from({ length: o.runs }, (_, i) => o.baseSeed + i);
  const outcomes: SwarmOutcome[] = [];
  let next = 0;
  let done = 0;
  let lastLine = "";
  const tty = Deno.stderr.isTerminal();
  const report = () => {
    if (!o.progress) return;
    const failing = outcomes.filter((x) => x.violations > 0).length;
    const line = `swarm ${done}/${o.runs} seeds, ${failing} failing, ${
      ((elapsedMs()) / 1000).toFixed(1)
    } s`;
    if (tty) Deno.stderr.writeSync(encoder.encode(`\r${line}`));
    else if (done === o.runs || done % Math.max(1, Math.ceil(o.runs / 10)) === 0) {
      if (line !== lastLine) Deno.stderr.writeSync(encoder.encode(`${line}\n`));
    }
    lastLine = line;
  };
  const worker = () =>
    new Promise<void>((resolve, reject) => {
      const w = new Worker(new URL("./swarm_worker.ts", import.meta.url), { type: "module" });
      const feed = () => {
        if (next >= seeds.length) {
          w.terminate();
          resolve();
          return;
        }
        const job: SwarmJob = {
          seed: seeds[next++]!,
          mode: o.mode,
          idempotence: o.idempotence ?? false,
        };
        w.postMessage(job);
      };
      w.onmessage = (e: MessageEvent<SwarmOutcome>) => {
        outcomes.push(e.data);
        done++;
        report();
        feed();
      };
      w.onerror = (e) => {
        e.preventDefault();
        w.terminate();
        reject(new Error(`Swarm worker failed: ${e.message}`));
      };
      feed();
    });
  await Promise.all(Array.from({ length: Math.min(o.workers, o.runs) }, worker));
  if (o.progress && tty) Deno.stderr.writeSync(encoder.encode("\n"));
  outcomes.sort((a, b) => a.seed - b.seed);
  const wallMs = elapsedMs();
  const failures = outcomes.filter((x) => x.violations > 0);
  return {
    runs: outcomes.length,
    failures: failures.length,
    mode: o.mode,
    baseSeed: o.baseSeed,
    workers: o.workers,
    wallMs: Math.round(wallMs),
    seedsPerMinute: Math.round(outcomes.length / (wallMs / 60_000) * 10) / 10,
    simulatedH: Math.round(outcomes.reduce((s, x) => s + x.simulatedMs, 0) / 3_600_000 * 10) / 10,
    orders: outcomes.reduce((s, x) => s + x.orders, 0),
    dispensed: outcomes.reduce((s, x) => s + x.dispensed, 0),
    violations: failures.map((x) => ({
      seed: x.seed,
      invariant: x.first!.invariant,
      at: x.first!.at,
      message: x.first!.message,
      violations: x.violations,
      replay: x.replay,
    })),
  };
}

/** The swarm's result as text. */
export function formatSwarm(r: SwarmResult): string {
  const lines = [
    `swarm      ${r.runs} seeds from ${r.baseSeed} (${r.mode} mode) in ${
      (r.wallMs / 1000).toFixed(1)
    } s on ${r.workers} workers: ${r.seedsPerMinute} seeds/min`,
    `simulated  ${r.simulatedH} h, ${r.orders} orders, ${r.dispensed} dispensed`,
  ];
  if (r.failures === 0) lines.push("invariants all held");
  else {
    lines.push(`FAILING    ${r.failures} seed(s):`);
    for (const f of r.violations) {
      lines.push(`  seed ${f.seed}: ${f.invariant} at ${f.at}: ${f.message}`);
      lines.push(`    replay: ${f.replay}`);
    }
  }
  return lines.join("\n");
}
