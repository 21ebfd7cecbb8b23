/**
 * `deno task sim`: run a scenario, or a swarm of random ones.
 *
 *   deno task sim run FILE|swarm [--seed N] [--mode safety|liveness] [--idempotence]
 *                    [--log PATH | --no-log] [--json] [--report out.html] [--from MIN] [--hours H]
 *                    [--realtime [--speed N]] [--save FILE]
 *   deno task sim swarm --runs N [--workers W] [--seed BASE] [--mode M] [--idempotence] [--json]
 *   deno task sim check FILE...
 *
 * Exit status: 0 when every invariant held, 1 when one broke, 2 for bad
 * flags or files.
 */
import { parseArgs } from "node:util";
import { basename, join } from "node:path";
import {
  loadScenario,
  parseScenario,
  type ResolvedScenario,
  RunMode,
  ScenarioError,
  windowOf,
} from "./scenario.ts";
import { formatSummary, runScenario } from "./run.ts";
import { swarmScenario } from "./swarm_scenario.ts";
import { formatSwarm, runSwarm } from "./swarm.ts";
import { writeReport } from "./report.ts";
import { runRealtime } from "./realtime.ts";

const encoder = new TextEncoder();

/** A usage error: exit status 2 with its message. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

const usage = `usage:
  deno task sim run FILE|swarm [--seed N] [--mode safety|liveness] [--idempotence]
                   [--log PATH | --no-log] [--json] [--report out.html] [--from MIN] [--hours H]
                   [--realtime [--speed N]] [--save FILE]
  deno task sim swarm --runs N [--workers W] [--seed BASE] [--mode safety|liveness]
                     [--idempotence] [--json]
  deno task sim check FILE...`;

function int(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`Bad --${name} "${value}": must be an integer in ${min}..${max}`);
  }
  return n;
}

function num(name: string, value: string | undefined, min: number, max: number) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`Bad --${name} "${value}": must be a number in ${min}..${max}`);
  }
  return n;
}

function mode(value: string | undefined): RunMode | undefined {
  if (value === undefined) return undefined;
  const m = RunMode.safeParse(value);
  if (!m.success) throw new UsageError(`Bad --mode "${value}": must be safety or liveness`);
  return m.data;
}

/** Loads FILE, or the swarm's scenario of `seed` when FILE is "swarm". */
async function scenarioOf(
  file: string,
  seed: number | undefined,
  m: RunMode | undefined,
): Promise<ResolvedScenario> {
  if (file === "swarm") {
    if (seed === undefined) throw new UsageError('"run swarm" needs --seed N');
    return parseScenario(swarmScenario(seed, m ?? "liveness"), `swarm seed ${seed}`);
  }
  return await loadScenario(file);
}

function progressBar(): ((fraction: number, simulatedMs: number) => void) | undefined {
  if (!Deno.stderr.isTerminal()) return undefined;
  let last = -1;
  return (fraction, simulatedMs) => {
    const pct = Math.min(100, Math.floor(fraction * 100));
    if (pct === last) return;
    last = pct;
    const width = 30;
    const full = Math.round(width * pct / 100);
    const bar = "#".repeat(full) + ".".repeat(width - full);
    const h = (simulatedMs / 3_600_000).toFixed(1);
    Deno.stderr.writeSync(encoder.encode(`\r[${bar}] ${pct}% ${h} h simulated`));
  };
}

function clearProgress(): void {
  if (Deno.stderr.isTerminal()) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
}

async function runCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      seed: { type: "string" },
      mode: { type: "string" },
      idempotence: { type: "boolean" },
      log: { type: "string" },
      "no-log": { type: "boolean" },
      json: { type: "boolean" },
      report: { type: "string" },
      hours: { type: "string" },
      from: { type: "string" },
      realtime: { type: "boolean" },
      speed: { type: "string" },
      save: { type: "string" },
      "heartbeat-ms": { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) {
    throw new UsageError(`"run" takes one scenario FILE (or "swarm"), got ${positionals.length}`);
  }
  const file = positionals[0]!;
  const seed = int("seed", values.seed, 0, 2 ** 31 - 1);
  const m = mode(values.mode);
  const hours = num("hours", values.hours, 0.01, 24 * 7);
  const speed = num("speed", values.speed, 0.01, 100_000);
  const heartbeatMs = int("heartbeat-ms", values["heartbeat-ms"], 100, 60_000);
  if (values.speed !== undefined && !values.realtime) {
    throw new UsageError("Bad --speed: only with --realtime");
  }
  if (values.log !== undefined && values["no-log"]) {
    throw new UsageError("Bad flags: --log and --no-log together");
  }
  const fromMin = num("from", values.from, 0, 7 * 24 * 60);
  const loaded = await scenarioOf(file, seed, m);
  const resolved = hours !== undefined || fromMin !== undefined
    ? windowOf(loaded, fromMin ?? 0, hours ?? (loaded.durationMs / 3_600_000 - (fromMin ?? 0) / 60))
    : loaded;
  const window = [
    fromMin !== undefined ? `--from ${fromMin}` : "",
    hours !== undefined ? `--hours ${hours}` : "",
  ].filter(Boolean).join(" ");
  if (values.save) {
    const raw = {
      ...(file === "swarm" ? swarmScenario(seed!, m ?? "liveness") : resolved.scenario),
      ...(values.idempotence ? { idempotence: true } : {}),
    };
    await Deno.writeTextFile(values.save, JSON.stringify(raw, null, 2) + "\n");
  }
  const runSeed = seed ?? resolved.scenario.seed;
  const source = [file === "swarm" ? "swarm" : file, window].filter(Boolean).join(" ");

  if (values.realtime) {
    const code = await runRealtime({
      resolved,
      seed: runSeed,
      source,
      speed: speed ?? 1,
      natsUrl: Deno.env.get("NATS_URL") ?? "nats://127.0.0.1:4222",
      json: values.json ?? false,
    });
    return code;
  }

  const logPath = values["no-log"]
    ? null
    : values.log ?? join("sim-out", `${resolved.scenario.name}-${runSeed}.jsonl`);
  const { summary, world } = await runScenario({
    resolved,
    source,
    ...(seed !== undefined ? { seed } : {}),
    ...(m ? { mode: m } : {}),
    ...(values.idempotence ? { idempotence: true } : {}),
    logPath,
    ...(heartbeatMs ? { heartbeatMs } : {}),
    ...(() => {
      const p = progressBar();
      return p ? { onProgress: p } : {};
    })(),
  });
  clearProgress();
  if (values.report) await writeReport(values.report, summary, world, resolved);
  if (values.json) console.log(JSON.stringify(summary));
  else {
    console.log(formatSummary(summary));
    if (values.report) console.log(`report     ${values.report}`);
  }
  return summary.violations.length > 0 ? 1 : 0;
}

async function swarmCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      runs: { type: "string" },
      workers: { type: "string" },
      seed: { type: "string" },
      mode: { type: "string" },
      idempotence: { type: "boolean" },
      json: { type: "boolean" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) {
    throw new UsageError(`"swarm" takes no FILE, got "${positionals[0]}"`);
  }
  const runs = int("runs", values.runs, 1, 1_000_000);
  if (runs === undefined) throw new UsageError('"swarm" needs --runs N');
  const workers = int("workers", values.workers, 1, 64) ??
    Math.max(1, Math.min(navigator.hardwareConcurrency ?? 2, 8));
  const baseSeed = int("seed", values.seed, 0, 2 ** 31 - 1) ?? seedFromEnv();
  const m = mode(values.mode) ?? "liveness";
  const result = await runSwarm({
    runs,
    workers,
    baseSeed,
    mode: m,
    idempotence: values.idempotence ?? false,
    progress: Deno.stderr.isTerminal() || !values.json,
  });
  if (values.json) console.log(JSON.stringify(result));
  else console.log(formatSwarm(result));
  return result.failures > 0 ? 1 : 0;
}

/** The swarm's first seed: `SIM_SEED` or 1, so CI runs are reproducible. */
function seedFromEnv(): number {
  const v = Deno.env.get("SIM_SEED");
  if (v === undefined) return 1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`Bad SIM_SEED "${v}"`);
  return n;
}

async function checkCommand(files: string[]): Promise<number> {
  if (files.length === 0) throw new UsageError('"check" needs at least one FILE');
  for (const f of files) {
    const r = await loadScenario(f);
    console.log(`${basename(f)}: ok (${r.scenario.name}, ${r.faults.length} faults)`);
  }
  return 0;
}

/** Runs the command line `args`; resolves with the exit status. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case "run":
        return await runCommand(rest);
      case "swarm":
        return await swarmCommand(rest);
      case "check":
        return await checkCommand(rest);
      case undefined:
      case "help":
      case "--help":
        console.log(usage);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof ScenarioError) {
      console.error(`sim: ${err.message}\n${err instanceof UsageError ? usage : ""}`.trimEnd());
      return 2;
    }
    if (err instanceof TypeError && /option|argument/i.test(err.message)) {
      console.error(`sim: ${err.message}\n${usage}`);
      return 2;
    }
    throw err;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
