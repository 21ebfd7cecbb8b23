/**
 * One simulated run, from a scenario to its summary: plays the world, writes
 * and hashes the event log, checks the invariants and says how to replay it.
 */
import { dirname } from "node:path";
import type { ResolvedScenario, RunMode } from "./scenario.ts";
import type { Violation } from "./invariants.ts";
import { EventLog, fileSink } from "./world/event_log.ts";
import { runWorld, type WorldResult } from "./world/world.ts";
import { stopwatch } from "./world/stopwatch.ts";

/** Options of {@linkcode runScenario}. */
export interface RunOptions {
  resolved: ResolvedScenario;
  /** How the scenario is named on the command line (file path, or "swarm"). */
  source: string;
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Overrides the scenario's mode. */
  mode?: RunMode;
  idempotence?: boolean;
  /** Where the JSONL log goes; null: hash only, no file. */
  logPath: string | null;
  onProgress?: (fraction: number, simulatedMs: number) => void;
  heartbeatMs?: number;
}

/** A violation as the summary shows it. */
export interface ViolationView extends Violation {
  /** Virtual time, ISO 8601. */
  at: string;
}

/** What a run prints. */
export interface RunSummary {
  scenario: string;
  seed: number;
  mode: RunMode;
  idempotence: boolean;
  logPath: string | null;
  logSha256: string;
  logLines: number;
  logBytes: number;
  simulatedMs: number;
  wallMs: number;
  /** Simulated time per wall time. */
  speedup: number;
  eventsPerSecond: number;
  timersFired: number;
  busMessages: number;
  customers: number;
  orders: number;
  dispensed: number;
  refunded: number;
  cancelled: number;
  open: number;
  revenueCents: number;
  /** From order placed to READY, for orders that got there. */
  avgWaitS: number | null;
  p95WaitS: number | null;
  pizzasPerHour: number;
  ovenEnergyWh: number;
  maxOvenTempC: number;
  boots: number;
  faultsSeen: Record<string, number>;
  alerts: Record<string, number>;
  customerOutcomes: Record<string, number>;
  violations: ViolationView[];
  replay: string;
}

/** The command that replays a run. */
export function replayCommand(
  source: string,
  seed: number,
  mode: RunMode,
  defaultMode: RunMode,
  idempotence: boolean,
): string {
  const parts = ["deno task sim run", source, `--seed ${seed}`];
  if (mode !== defaultMode) parts.push(`--mode ${mode}`);
  if (idempotence) parts.push("--idempotence");
  return parts.join(" ");
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function count(values: Iterable<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[v] = (out[v] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** Plays the scenario and summarises it; the world's result comes along for the report. */
export async function runScenario(
  o: RunOptions,
): Promise<{ summary: RunSummary; world: WorldResult }> {
  const scenario = o.resolved.scenario;
  const seed = o.seed ?? scenario.seed;
  const mode = o.mode ?? scenario.mode;
  const idempotence = o.idempotence ?? scenario.idempotence;
  if (o.logPath) await Deno.mkdir(dirname(o.logPath), { recursive: true });
  const log = new EventLog(o.logPath ? fileSink(o.logPath) : null);
  const elapsedMs = stopwatch();
  const world = await runWorld({
    resolved: o.resolved,
    seed,
    mode,
    idempotence,
    log,
    ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    ...(o.heartbeatMs ? { heartbeatMs: o.heartbeatMs } : {}),
  });
  const summary = summarize(world, log, {
    source: o.source,
    seed,
    mode,
    // `run swarm --seed N` builds a liveness scenario unless told otherwise.
    defaultMode: o.source.startsWith("swarm") ? "liveness" : scenario.mode,
    idempotence,
    logPath: o.logPath,
    wallMs: elapsedMs(),
    scenario: scenario.name,
  });
  return { summary, world };
}

/** From the start to the last pizza dispensed (or the end of the day, if later). */
function servingMs(world: WorldResult): number {
  let last = world.dayEndMs;
  for (const o of world.observer.orders.values()) {
    for (const s of o.statuses) if (s.status === "DISPENSED" && s.atMs > last) last = s.atMs;
  }
  return last - world.startMs;
}

/** What a summary is made from besides the world. */
export interface SummaryContext {
  source: string;
  scenario: string;
  seed: number;
  mode: RunMode;
  defaultMode: RunMode;
  idempotence: boolean;
  logPath: string | null;
  wallMs: number;
}

/** Summarises a finished world; closes `log` (its hash is part of the summary). */
export function summarize(world: WorldResult, log: EventLog, c: SummaryContext): RunSummary {
  const logSha256 = log.finish();
  const wallMs = c.wallMs;
  const simulatedMs = world.endMs - world.startMs;

  const statuses = world.journalOrders.map((r) => r.status);
  const by = (s: string) => statuses.filter((x) => x === s).length;
  const waits: number[] = [];
  for (const facts of world.observer.orders.values()) {
    const ready = facts.statuses.find((s) => s.status === "READY");
    if (ready && facts.placedAtMs !== null) waits.push((ready.atMs - facts.placedAtMs) / 1000);
  }
  waits.sort((a, b) => a - b);
  const dispensed = by("DISPENSED");
  const violations = world.violations
    .slice()
    .sort((a, b) => a.atMs - b.atMs)
    .map((v) => ({ ...v, at: new Date(v.atMs).toISOString() }));
  return {
    scenario: c.scenario,
    seed: c.seed,
    mode: c.mode,
    idempotence: c.idempotence,
    logPath: c.logPath,
    logSha256,
    logLines: log.lines,
    logBytes: log.bytes,
    simulatedMs,
    wallMs: Math.round(wallMs),
    speedup: Math.round(simulatedMs / Math.max(1, wallMs)),
    eventsPerSecond: Math.round((world.timersFired + world.busMessages) / (wallMs / 1000)),
    timersFired: world.timersFired,
    busMessages: world.busMessages,
    customers: world.customers.length,
    orders: statuses.length,
    dispensed,
    refunded: by("REFUNDED"),
    cancelled: by("CANCELLED"),
    open: statuses.filter((s) => !["DISPENSED", "REFUNDED", "CANCELLED"].includes(s)).length,
    revenueCents: world.revenueCents,
    avgWaitS: waits.length
      ? Math.round(waits.reduce((s, w) => s + w, 0) / waits.length * 10) / 10
      : null,
    p95WaitS: percentile(waits, 0.95) === null
      ? null
      : Math.round(percentile(waits, 0.95)! * 10) / 10,
    pizzasPerHour: Math.round(dispensed / Math.max(servingMs(world) / 3_600_000, 1e-9) * 10) / 10,
    ovenEnergyWh: Math.round(world.ovenEnergyWh * 10) / 10,
    maxOvenTempC: Math.round(world.maxOvenTempC * 10) / 10,
    boots: world.boots,
    faultsSeen: count(
      world.observer.faults.filter((f) => f.kind !== "plant").map((f) => f.kind),
    ),
    alerts: Object.fromEntries([...world.observer.alerts].sort(([a], [b]) => a.localeCompare(b))),
    customerOutcomes: count(world.customers.map((c) => c.outcome ?? "still there")),
    violations,
    replay: replayCommand(c.source, c.seed, c.mode, c.defaultMode, c.idempotence),
  };
}

/** The summary as text for a person. */
export function formatSummary(s: RunSummary): string {
  const money = (c: number) => `$${(c / 100).toFixed(2)}`;
  const h = (ms: number) => `${(ms / 3_600_000).toFixed(2)} h`;
  const kv = (r: Record<string, number>) =>
    Object.entries(r).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
  const lines = [
    `scenario   ${s.scenario} (seed ${s.seed}, ${s.mode} mode${
      s.idempotence ? ", idempotence" : ""
    })`,
    `simulated  ${h(s.simulatedMs)} in ${
      (s.wallMs / 1000).toFixed(1)
    } s wall (${s.speedup}x, ${s.eventsPerSecond} events/s)`,
    `customers  ${s.customers}: ${kv(s.customerOutcomes)}`,
    `orders     ${s.orders}: dispensed ${s.dispensed}, refunded ${s.refunded}, cancelled ${s.cancelled}, open ${s.open}`,
    `revenue    ${money(s.revenueCents)}`,
    `wait       avg ${s.avgWaitS ?? "-"} s, p95 ${s.p95WaitS ?? "-"} s (placed to READY)`,
    `throughput ${s.pizzasPerHour} pizzas/h`,
    `oven       ${s.ovenEnergyWh} Wh, max ${s.maxOvenTempC} °C`,
    `boots      ${s.boots}`,
    `faults     ${kv(s.faultsSeen)}`,
    `alerts     ${kv(s.alerts)}`,
    `log        ${s.logPath ?? "(not written)"} (${s.logLines} lines)`,
    `sha256     ${s.logSha256}`,
  ];
  if (s.violations.length === 0) {
    lines.push("invariants all held");
  } else {
    const first = s.violations[0]!;
    lines.push(
      `VIOLATED   ${first.invariant} at ${first.at}: ${first.message}`,
      ...s.violations.slice(1, 10).map((v) => `           ${v.invariant} at ${v.at}: ${v.message}`),
      ...(s.violations.length > 10 ? [`           … and ${s.violations.length - 10} more`] : []),
      `replay     ${s.replay}`,
    );
  }
  return lines.join("\n");
}
