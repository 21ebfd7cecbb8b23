/**
 * Scenario files: one simulated machine-day as JSON, validated by zod. A
 * scenario names the machine (menu, prices, slots, stock with expiry relative
 * to the start), the start time and duration, the seed, the customers'
 * arrival profile, and a schedule of faults with the technicians' repairs.
 *
 * Times in the fault schedule are `atMin` (minutes after the start) or `at`
 * ("HH:MM" local time of the machine on the start day, or on a later day when
 * written "d+1 HH:MM").
 */
import { z } from "zod";
import { MachineConfig } from "../protocol/config.ts";
import { MachineId } from "../protocol/define.ts";
import { Pizza } from "../protocol/entities.ts";
import { Component } from "../protocol/define.ts";
import { defaultConfig } from "../controller/default_config.ts";
import { defaultHeartbeatMs } from "../controller/runner.ts";

/** How a run judges the controller (TigerBeetle's VOPR modes). */
export const RunMode = z.enum(["safety", "liveness"]);
/** How a run judges the controller. */
export type RunMode = z.infer<typeof RunMode>;

const When = z.object({
  /** Minutes after the start. */
  atMin: z.number().nonnegative().optional(),
  /** Local time of day on the start day ("HH:MM"), or a later day ("d+1 HH:MM"). */
  at: z.string().regex(/^(d\+\d+ )?\d{1,2}:\d{2}$/, 'must be "HH:MM" or "d+N HH:MM"').optional(),
});

const Minutes = z.number().positive().max(7 * 24 * 60);

/** One fault of the schedule, with what the technician does about it. */
export const FaultSpec = z.discriminatedUnion("type", [
  When.extend({
    type: z.literal("thermocoupleFails"),
    /** The thermocouple is replaced this long after; then the technician resets the oven. */
    repairAfterMin: Minutes.nullable().default(30),
  }),
  When.extend({
    type: z.literal("heaterFails"),
    repairAfterMin: Minutes.nullable().default(30),
  }),
  When.extend({
    type: z.literal("fridgeFails"),
    /** Repaired this long after; the technician then services storage. */
    repairAfterMin: Minutes.nullable().default(60),
  }),
  When.extend({ type: z.literal("cardReaderOffline"), forMin: Minutes.nullable().default(10) }),
  When.extend({ type: z.literal("gatewayDown"), forMin: Minutes.nullable().default(10) }),
  When.extend({
    type: z.literal("estop"),
    /** Released this long after; the technician then resets safety and the actors. */
    releaseAfterMin: Minutes.nullable().default(5),
  }),
  When.extend({ type: z.literal("serviceDoorOpen"), forMin: Minutes.nullable().default(5) }),
  When.extend({ type: z.literal("smoke"), forMin: Minutes.nullable().default(5) }),
  When.extend({
    type: z.literal("armJam"),
    /** The technician frees the arm this long after and resets it. */
    freeAfterMin: Minutes.nullable().default(10),
  }),
  When.extend({
    type: z.literal("natsPartition"),
    /** The component whose subjects are cut, or "all" for every subject. */
    component: z.union([Component, z.literal("all")]).default("all"),
    forMin: Minutes.nullable().default(5),
  }),
  When.extend({
    type: z.literal("busFaults"),
    forMin: Minutes.nullable().default(10),
    dropProbability: z.number().min(0).max(1).default(0),
    duplicateProbability: z.number().min(0).max(1).default(0),
    delayMs: z.object({ minMs: z.number().int().nonnegative(), maxMs: z.number().int() })
      .refine((d) => d.maxMs >= d.minMs, "maxMs must be at least minMs").optional(),
  }),
  When.extend({
    type: z.literal("powerLoss"),
    /** The controller boots again this many seconds after. */
    restartAfterS: z.number().positive().max(24 * 3600).nullable().default(30),
  }),
  When.extend({ type: z.literal("storageDoorOpen"), forMin: Minutes.nullable().default(10) }),
  When.extend({ type: z.literal("customerAbsent"), forMin: Minutes.nullable().default(10) }),
  When.extend({
    type: z.literal("restock"),
    lines: z.array(z.object({
      pizzaId: z.string().min(1),
      quantity: z.number().int().positive().max(100),
      storageSlot: z.number().int().nonnegative(),
      expiresInH: z.number(),
    })).min(1).max(100),
    performedBy: z.string().min(1).max(100).default("sim technician"),
  }),
  When.extend({
    type: z.literal("maintenance"),
    forMin: Minutes.nullable().default(30),
    reason: z.string().min(1).max(200).default("scheduled maintenance"),
  }),
]);
/** One fault of the schedule. */
export type FaultSpec = z.infer<typeof FaultSpec>;

/** A stock line: quantity of a pizza in a slot, expiring hours after the start. */
export const StockLine = z.object({
  pizzaId: z.string().min(1),
  storageSlot: z.number().int().nonnegative(),
  quantity: z.number().int().positive().max(100).default(1),
  /** Hours after the start at which it expires (negative: already expired). */
  expiresInH: z.number(),
});

/** The payment methods customers choose, as shares (normalised). */
export const PaymentMix = z.object({
  card: z.number().nonnegative().default(0.55),
  mobile: z.number().nonnegative().default(0.2),
  cash: z.number().nonnegative().default(0.17),
  /** A card that is declined; the customer then tries another card or gives up. */
  declined: z.number().nonnegative().default(0.05),
  /** A card whose first gateway attempt times out (then approves on retry). */
  timeout: z.number().nonnegative().default(0.03),
}).refine((m) => m.card + m.mobile + m.cash + m.declined + m.timeout > 0, {
  message: "at least one payment share must be positive",
});

const Peak = z.object({
  /** First hour of the peak, local time (inclusive, as seed 003 §6.3). */
  fromH: z.number().int().min(0).max(23),
  /** Last hour of the peak (inclusive). */
  toH: z.number().int().min(0).max(23),
  /** Arrival rate multiplier during the peak. */
  factor: z.number().positive().max(100),
});

/** How customers arrive and behave. */
export const Customers = z.object({
  /** Arrivals per hour outside the peaks. */
  baseRatePerH: z.number().nonnegative().max(1000).default(8),
  peaks: z.array(Peak).max(6).default([
    { fromH: 11, toH: 14, factor: 3 },
    { fromH: 17, toH: 21, factor: 2.5 },
  ]),
  /** Menu popularity weights by pizzaId (missing ones weigh 1). */
  popularity: z.record(z.string(), z.number().nonnegative()).default({}),
  payment: PaymentMix.default({
    card: 0.55,
    mobile: 0.2,
    cash: 0.17,
    declined: 0.05,
    timeout: 0.03,
  }),
  /** Time from READY to the customer at the pickup door: exponential, clipped. */
  pickupDelayS: z.object({
    minS: z.number().nonnegative().default(5),
    meanS: z.number().positive().default(60),
    maxS: z.number().positive().default(1200),
  }).refine((d) => d.maxS >= d.minS, "maxS must be at least minS").default({
    minS: 5,
    meanS: 60,
    maxS: 1200,
  }),
  /** Share of customers who pay and never come back. */
  noShowShare: z.number().min(0).max(1).default(0.02),
  /** Share of customers who mistype their pickup code at first. */
  mistypeShare: z.number().min(0).max(1).default(0.05),
  /** Share of customers who give up on a declined card instead of trying another. */
  giveUpOnDeclineShare: z.number().min(0).max(1).default(0.4),
  /** A customer told a longer wait than this cancels before paying. */
  maxWaitMin: z.number().positive().max(24 * 60).default(30),
  /** How often the kiosk polls the order's status while the customer waits. */
  pollEveryS: z.number().positive().max(600).default(15),
});
/** How customers arrive and behave. */
export type Customers = z.infer<typeof Customers>;

/** The machine: its id, configuration and what it holds at the start. */
export const MachineSpec = z.object({
  machineId: MachineId.default("sim-001"),
  /** The menu (default: the controller's default menu). */
  menu: z.array(Pizza).min(1).max(50).optional(),
  storageSlots: z.number().int().positive().max(200).default(48),
  pickupBays: z.number().int().positive().max(8).default(1),
  acceptedCents: z.array(z.number().int().positive()).min(1).optional(),
  utcOffsetMin: z.number().int().min(-720).max(840).default(0),
  lowStockThreshold: z.number().int().nonnegative().default(3),
  /** Stock at the start; "full": every slot round-robin, `fullShelfLifeH` hours of life. */
  stock: z.union([z.literal("full"), z.array(StockLine).max(500)]).default("full"),
  fullShelfLifeH: z.number().default(120),
  /** Pizzas per slot of a "full" stock. */
  fullPerSlot: z.number().int().positive().max(20).default(1),
  /** Clock ms between the actors' heartbeats (a real controller's default). */
  heartbeatMs: z.number().int().min(100).max(60_000).default(defaultHeartbeatMs),
  /** Gateway latency per answer, in ms. */
  gatewayLatencyMs: z.number().int().nonnegative().max(60_000).default(300),
});

/** A scenario file. */
export const Scenario = z.object({
  name: z.string().regex(
    /^[a-z0-9][a-z0-9._-]{0,80}$/,
    "must be lower-case letters, digits, . _ -",
  ),
  description: z.string().max(2000).default(""),
  seed: z.number().int().nonnegative().max(2 ** 31 - 1).default(1),
  /** Start of the day, ISO 8601 (UTC unless an offset is given). */
  start: z.iso.datetime({ offset: true }).default("2025-03-03T06:00:00Z"),
  /** How long customers arrive, in hours. */
  durationH: z.number().positive().max(24 * 7),
  /** After the day: at most this long for every order to end (liveness) before judging. */
  drainMaxMin: z.number().positive().max(24 * 60).default(120),
  mode: RunMode.default("liveness"),
  /** Run the idempotence workload (every request resent with its keys) unless told otherwise. */
  idempotence: z.boolean().default(false),
  machine: MachineSpec.default({
    machineId: "sim-001",
    storageSlots: 48,
    pickupBays: 1,
    utcOffsetMin: 0,
    lowStockThreshold: 3,
    stock: "full",
    fullShelfLifeH: 120,
    fullPerSlot: 1,
    heartbeatMs: defaultHeartbeatMs,
    gatewayLatencyMs: 300,
  }),
  customers: Customers.default(Customers.parse({})),
  /** Bus faults for the whole run (delays, drops, duplicates). */
  bus: z.object({
    dropProbability: z.number().min(0).max(1).default(0),
    duplicateProbability: z.number().min(0).max(1).default(0),
    delayMs: z.object({ minMs: z.number().int().nonnegative(), maxMs: z.number().int() })
      .refine((d) => d.maxMs >= d.minMs, "maxMs must be at least minMs").optional(),
  }).default({ dropProbability: 0, duplicateProbability: 0 }),
  faults: z.array(FaultSpec).max(1000).default([]),
});
/** A scenario as written. */
export type ScenarioInput = z.input<typeof Scenario>;
/** A validated scenario, defaults filled in. */
export type Scenario = z.infer<typeof Scenario>;

/** A scenario file or value was refused; the message names the file and the field. */
export class ScenarioError extends Error {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ScenarioError";
  }
}

/** A fault with its times resolved to ms after the start. */
export type ScheduledFault = FaultSpec & { atMs: number; index: number };

/** A scenario resolved against its start: config, stock and fault times in ms. */
export interface ResolvedScenario {
  scenario: Scenario;
  startMs: number;
  durationMs: number;
  config: MachineConfig;
  /** Stock lines with absolute `expiresAt`. */
  stock: { pizzaId: string; quantity: number; storageSlot: number; expiresAt: number }[];
  faults: ScheduledFault[];
}

function formatIssues(where: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join(".") : "(root)";
    return `  ${path}: ${i.message}`;
  });
  return `${where}: invalid scenario\n${lines.join("\n")}`;
}

/**
 * Validates `value` as a scenario and resolves it; `where` names its source.
 *
 * @throws {ScenarioError} Naming `where` and each bad field.
 */
export function parseScenario(value: unknown, where = "scenario"): ResolvedScenario {
  const parsed = Scenario.safeParse(value);
  if (!parsed.success) throw new ScenarioError(formatIssues(where, parsed.error));
  return resolveScenario(parsed.data, where);
}

/**
 * Reads, validates and resolves the scenario file at `path`.
 *
 * @throws {ScenarioError} When the file cannot be read, is not JSON, or is invalid.
 */
export async function loadScenario(path: string): Promise<ResolvedScenario> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ScenarioError(
      `${path}: cannot read the scenario file (${err instanceof Error ? err.message : err})`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(
      `${path}: not valid JSON (${err instanceof Error ? err.message : err})`,
    );
  }
  return parseScenario(json, path);
}

/** Resolves times, config and stock of a validated scenario. */
export function resolveScenario(scenario: Scenario, where = "scenario"): ResolvedScenario {
  const bad = (field: string, message: string): never => {
    throw new ScenarioError(`${where}: invalid scenario\n  ${field}: ${message}`);
  };
  const startMs = Date.parse(scenario.start);
  if (!Number.isFinite(startMs)) bad("start", `not a date: "${scenario.start}"`);
  const m = scenario.machine;
  const configValue = {
    version: "sim",
    menu: m.menu ?? defaultConfig.menu,
    acceptedCents: m.acceptedCents ?? defaultConfig.acceptedCents,
    storageSlots: m.storageSlots,
    pickupBays: m.pickupBays,
    utcOffsetMin: m.utcOffsetMin,
    lowStockThreshold: m.lowStockThreshold,
  };
  const config = MachineConfig.safeParse(configValue);
  if (!config.success) {
    const i = config.error.issues[0]!;
    bad(`machine.${i.path.map(String).join(".")}`, i.message);
  }
  const menuIds = new Set(configValue.menu.map((p) => p.pizzaId));
  const hourMs = 3_600_000;
  const stock = m.stock === "full"
    ? Array.from({ length: m.storageSlots }, (_, slot) => ({
      pizzaId: configValue.menu[slot % configValue.menu.length]!.pizzaId,
      quantity: m.fullPerSlot,
      storageSlot: slot,
      expiresAt: startMs + Math.round(m.fullShelfLifeH * hourMs),
    }))
    : m.stock.map((line, i) => {
      if (!menuIds.has(line.pizzaId)) {
        bad(`machine.stock.${i}.pizzaId`, `"${line.pizzaId}" is not on the menu`);
      }
      if (line.storageSlot >= m.storageSlots) {
        bad(`machine.stock.${i}.storageSlot`, `slot ${line.storageSlot} >= ${m.storageSlots}`);
      }
      return {
        pizzaId: line.pizzaId,
        quantity: line.quantity,
        storageSlot: line.storageSlot,
        expiresAt: startMs + Math.round(line.expiresInH * hourMs),
      };
    });
  for (const id of Object.keys(scenario.customers.popularity)) {
    if (!menuIds.has(id)) bad(`customers.popularity.${id}`, `"${id}" is not on the menu`);
  }
  const offsetMs = m.utcOffsetMin * 60_000;
  const faults = scenario.faults.map((f, index): ScheduledFault => {
    const field = `faults.${index}`;
    let atMs: number;
    if (f.atMin !== undefined && f.at !== undefined) {
      return bad(field, 'give either "atMin" or "at", not both');
    } else if (f.atMin !== undefined) {
      atMs = Math.round(f.atMin * 60_000);
    } else if (f.at !== undefined) {
      const match = /^(?:d\+(\d+) )?(\d{1,2}):(\d{2})$/.exec(f.at)!;
      const day = Number(match[1] ?? 0);
      const h = Number(match[2]);
      const min = Number(match[3]);
      if (h > 23 || min > 59) bad(`${field}.at`, `not a time of day: "${f.at}"`);
      const localStart = startMs + offsetMs;
      const dayStart = localStart - (((localStart % 86_400_000) + 86_400_000) % 86_400_000);
      atMs = dayStart + day * 86_400_000 + (h * 60 + min) * 60_000 - localStart;
      if (atMs < 0) bad(`${field}.at`, `"${f.at}" is before the start (${scenario.start})`);
    } else {
      return bad(field, 'needs "atMin" or "at"');
    }
    if (f.type === "restock") {
      f.lines.forEach((line, j) => {
        if (!menuIds.has(line.pizzaId)) {
          bad(`${field}.lines.${j}.pizzaId`, `"${line.pizzaId}" is not on the menu`);
        }
        if (line.storageSlot >= m.storageSlots) {
          bad(`${field}.lines.${j}.storageSlot`, `slot ${line.storageSlot} >= ${m.storageSlots}`);
        }
      });
    }
    if (scenario.mode === "liveness" && healOf(f) === null) {
      bad(
        field,
        `a "${f.type}" that never heals is only allowed in safety mode (liveness needs every fault healed)`,
      );
    }
    return { ...f, atMs, index };
  }).sort((a, b) => a.atMs - b.atMs || a.index - b.index);
  return {
    scenario,
    startMs,
    durationMs: Math.round(scenario.durationH * hourMs),
    config: config.data!,
    stock,
    faults,
  };
}

/** How long after its start a fault heals, in ms; null when it never does; 0 when instant. */
export function healOf(f: FaultSpec): number | null {
  const min = (v: number | null) => v === null ? null : Math.round(v * 60_000);
  switch (f.type) {
    case "thermocoupleFails":
    case "heaterFails":
    case "fridgeFails":
      return min(f.repairAfterMin);
    case "estop":
      return min(f.releaseAfterMin);
    case "armJam":
      return min(f.freeAfterMin);
    case "powerLoss":
      return f.restartAfterS === null ? null : Math.round(f.restartAfterS * 1000);
    case "restock":
      return 0;
    default:
      return min(f.forMin);
  }
}

/**
 * A window of a resolved scenario, for fast tests: starts `fromMin` later and
 * lasts `hours`; faults outside the window are dropped, the others keep their
 * clock time. Stock expiry stays where it was in absolute time.
 */
export function windowOf(r: ResolvedScenario, fromMin: number, hours: number): ResolvedScenario {
  const shiftMs = Math.round(fromMin * 60_000);
  const durationMs = Math.round(hours * 3_600_000);
  const startMs = r.startMs + shiftMs;
  return {
    ...r,
    startMs,
    durationMs,
    scenario: { ...r.scenario, start: new Date(startMs).toISOString(), durationH: hours },
    faults: r.faults
      .filter((f) => f.atMs >= shiftMs && f.atMs < shiftMs + durationMs)
      .map((f) => ({ ...f, atMs: f.atMs - shiftMs })),
  };
}
