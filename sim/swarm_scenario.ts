/**
 * Random scenarios for the swarm: a short, busy day with a random fault
 * schedule, all drawn from one seed, so `deno task sim run swarm --seed N`
 * replays exactly what the swarm ran.
 */
import type { Random } from "../random/random.ts";
import type { FaultSpec, RunMode, ScenarioInput } from "./scenario.ts";
import { stream } from "./world/streams.ts";
import { defaultConfig } from "../controller/default_config.ts";

const faultTypes: FaultSpec["type"][] = [
  "thermocoupleFails",
  "heaterFails",
  "fridgeFails",
  "cardReaderOffline",
  "gatewayDown",
  "estop",
  "serviceDoorOpen",
  "smoke",
  "armJam",
  "natsPartition",
  "busFaults",
  "powerLoss",
  "storageDoorOpen",
  "customerAbsent",
  "restock",
  "maintenance",
];

const components = ["all", "oven", "carousel", "arm", "payment", "order", "safety", "supervisor"];

function pick<T>(r: Random, items: readonly T[]): T {
  return items[r.int(0, items.length - 1)]!;
}

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One random fault at `atMin`; in safety mode some never heal. */
function randomFault(r: Random, atMin: number, mode: RunMode, slots: number): FaultSpec {
  const type = pick(r, faultTypes);
  const forever = mode === "safety" && r.float() < 0.25;
  // Liveness faults heal within minutes: a day of the swarm is short.
  const minutes = (lo: number, hi: number) =>
    forever ? null : round(lo + r.float() * (hi - lo) * (mode === "liveness" ? 0.5 : 1));
  const base = { atMin: round(atMin) };
  switch (type) {
    case "thermocoupleFails":
    case "heaterFails":
    case "fridgeFails":
      return { ...base, type, repairAfterMin: minutes(1, 15) };
    case "estop":
      return { ...base, type, releaseAfterMin: minutes(0.2, 10) };
    case "armJam":
      return { ...base, type, freeAfterMin: minutes(0.5, 15) };
    case "powerLoss":
      return {
        ...base,
        type,
        restartAfterS: forever ? null : round(2 + r.float() * 300, 0),
      };
    case "natsPartition":
      return {
        ...base,
        type,
        component: pick(r, components) as "all",
        forMin: minutes(0.2, 8),
      };
    case "busFaults":
      return {
        ...base,
        type,
        forMin: minutes(1, 15),
        // Core NATS loses messages only around reconnects; random loss is a safety-mode fault.
        dropProbability: mode === "safety" ? round(r.float() * 0.3, 3) : 0,
        duplicateProbability: round(r.float() * 0.1, 3),
        ...(r.float() < 0.5 ? { delayMs: { minMs: 0, maxMs: r.int(1, 500) } } : {}),
      };
    case "restock": {
      const lines = Array.from({ length: r.int(1, 6) }, () => ({
        pizzaId: pick(r, defaultConfig.menu).pizzaId,
        quantity: r.int(1, 3),
        storageSlot: r.int(0, slots - 1),
        expiresInH: round(r.float() < 0.1 ? -1 : 1 + r.float() * 72),
      }));
      // One line per slot: the carousel refuses two kinds in one slot.
      const bySlot = new Map(lines.map((l) => [l.storageSlot, l]));
      return {
        ...base,
        type,
        lines: [...bySlot.values()],
        performedBy: "swarm technician",
      };
    }
    case "maintenance":
      return { ...base, type, forMin: minutes(1, 20), reason: "swarm maintenance" };
    case "customerAbsent":
      // Every pizza it strands is held for 30 minutes: keep it short.
      return { ...base, type, forMin: minutes(0.5, 4) };
    default:
      return { ...base, type, forMin: minutes(0.5, 12) } as FaultSpec;
  }
}

/** The swarm's scenario for `seed` in `mode`. */
export function swarmScenario(seed: number, mode: RunMode): ScenarioInput {
  const r = stream(seed, "swarm-scenario");
  const durationH = round(0.05 + r.float() * 0.1, 3);
  // Short bakes: the swarm hunts for logic bugs, and a day of them is minutes long.
  const menu = defaultConfig.menu.map((p) => ({
    ...p,
    cookingTimeMs: r.int(45, 150) * 1000,
    cookingTempC: pick(r, [200, 220, 230, 250]),
  }));
  const startH = 6 + r.int(0, 15);
  const slots = pick(r, [8, 12, 24, 48]);
  const sparse = r.float() < 0.5;
  const stock = sparse
    ? Array.from({ length: slots }, (_, slot) => ({
      pizzaId: defaultConfig.menu[slot % defaultConfig.menu.length]!.pizzaId,
      storageSlot: slot,
      quantity: r.int(1, 3),
      expiresInH: round(r.float() < 0.15 ? -0.5 + r.float() * 1.5 : 2 + r.float() * 100),
    })).filter(() => r.float() < 0.8)
    : "full" as const;
  const faultCount = mode === "safety" ? r.int(1, 8) : r.int(0, 4);
  const faults = Array.from(
    { length: faultCount },
    () => randomFault(r, r.float() * durationH * 60, mode, slots),
  );
  const share = () => round(r.float(), 3);
  return {
    name: `swarm-${seed}`,
    description: `Random short day of the swarm (seed ${seed}, ${mode} mode)`,
    seed,
    start: `2025-03-03T${String(startH).padStart(2, "0")}:${
      String(r.int(0, 59)).padStart(2, "0")
    }:00Z`,
    durationH,
    drainMaxMin: 120,
    mode,
    machine: {
      machineId: "swarm",
      menu,
      storageSlots: slots,
      pickupBays: r.int(1, 2),
      stock: sparse && Array.isArray(stock) && stock.length > 0 ? stock : "full",
      fullShelfLifeH: 72,
      heartbeatMs: pick(r, [1000, 2000, 5000, 5000]),
      gatewayLatencyMs: r.int(50, 2000),
    },
    customers: {
      baseRatePerH: round(10 + r.float() * 25, 1),
      payment: {
        card: share(),
        mobile: share() / 2,
        cash: share(),
        declined: share() / 4,
        timeout: share() / 4,
      },
      pickupDelayS: { minS: 2, meanS: round(10 + r.float() * 120, 0), maxS: 900 },
      // A no-show holds the machine for 45 minutes: few seeds have them.
      noShowShare: r.float() < 0.3 ? round(r.float() * 0.15, 3) : 0,
      mistypeShare: round(r.float() * 0.2, 3),
      giveUpOnDeclineShare: 0.5,
      pollEveryS: 10,
    },
    bus: r.float() < 0.3 ? { delayMs: { minMs: 0, maxMs: r.int(1, 50) } } : {},
    faults,
  };
}
