/**
 * The fault schedule and the technicians: each fault happens at its time and,
 * unless it never heals, is repaired later; after a repair a technician visits
 * and does what a real one would over the bus (safety reset, oven and arm
 * resets, storage service), as protocol/*.ts lets them.
 */
import type { TypedBus } from "../../bus/typed_bus.ts";
import { type Clock, sleep } from "../../clock/clock.ts";
import type { SimHardware } from "../../controller/assemble.ts";
import type { PlantSignal } from "../../protocol/plant.ts";
import type { CommandDef, Result } from "../../protocol/define.ts";
import * as safety from "../../protocol/safety.ts";
import * as oven from "../../protocol/oven.ts";
import * as arm from "../../protocol/arm.ts";
import * as carousel from "../../protocol/carousel.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import type { BusFaultOptions, SimBusFaults } from "../sim_bus.ts";
import { healOf, type ScheduledFault } from "../scenario.ts";
import type { SimController } from "./controller.ts";

/** What the technicians can reach. */
export interface TechnicianDeps {
  clock: Clock;
  machineId: string;
  /** The technician's own connection. */
  tech: TypedBus;
  hardware: SimHardware;
  controller: SimController;
  /** The bus's fault switches, when the bus is simulated. */
  busFaults: SimBusFaults | null;
  /** The bus faults of the whole run, restored after a `busFaults` window. */
  baseBusFaults: BusFaultOptions;
  startMs: number;
  event(kind: string, fields: Record<string, unknown>): void;
  /** The controller computer lost power, or booted again. */
  power?(on: boolean): void;
  /** Physically removes from storage what the controller no longer counts. */
  clearDiscarded(): number;
  /** A restock the carousel accepted: the pizzas are in their slots now. */
  restocked(
    items: { pizzaId: string; quantity: number; storageSlot: number; expiresAt: number }[],
  ): void;
}

/** The faults of a run, scheduled on the clock. */
export interface FaultSchedule {
  /** Faults and repairs still to come (besides visits under way). */
  pending(): number;
  /** Technician visits under way. */
  visiting(): number;
  /** Asks for a visit (e.g. the machine has been out of service too long). */
  callTechnician(why: string): void;
  /** Staff come to take an uncollected pizza out of the pickup area. */
  removeAbandoned(orderId: string): void;
  /** Orders whose pizza staff took out of the pickup area. */
  readonly removedByStaff: ReadonlySet<string>;
}

const signalOf: Partial<Record<ScheduledFault["type"], PlantSignal>> = {
  thermocoupleFails: "thermocoupleFailed",
  heaterFails: "heaterFailed",
  fridgeFails: "fridgeFailed",
  cardReaderOffline: "cardReaderOffline",
  estop: "estop",
  serviceDoorOpen: "serviceDoorOpen",
  smoke: "smoke",
  armJam: "armJam",
  storageDoorOpen: "storageDoorOpen",
  customerAbsent: "customerAbsent",
};

/** Faults after whose repair a technician checks and resets the machine. */
const needsVisit = new Set<ScheduledFault["type"]>([
  "thermocoupleFails",
  "heaterFails",
  "fridgeFails",
  "estop",
  "serviceDoorOpen",
  "smoke",
  "armJam",
  "powerLoss",
  "storageDoorOpen",
  "natsPartition",
]);

/** Staff come for an uncollected pizza this long after the machine's alert. */
const abandonedPickupDelayMs = 5 * 60_000;
/** Minutes after a repair before the technician's visit. */
const visitDelayMs = 2 * 60_000;

/** Schedules `faults` (times relative to `deps.startMs`). */
export function scheduleFaults(deps: TechnicianDeps, faults: ScheduledFault[]): FaultSchedule {
  const { clock, tech, hardware } = deps;
  const plant = hardware.plant;
  let pending = 0;
  let visits = 0;
  const by = "sim technician";

  const at = (atMs: number, fn: () => void | Promise<void>) => {
    pending++;
    clock.setTimeout(() => {
      pending--;
      void Promise.resolve(fn()).catch((err: unknown) =>
        deps.event("technician.error", { err: String(err) })
      );
    }, Math.max(0, atMs - clock.now()));
  };

  /** Calls `def` until it answers (any answer), at most `tries` times. */
  const ask = async <Q, R>(def: CommandDef<Q, R>, payload: Q, tries = 5): Promise<Result<R>> => {
    let r: Result<R> = { ok: false, error: { code: "TIMEOUT", message: "not asked" } };
    for (let i = 0; i < tries; i++) {
      r = await tech.request(def, payload, { timeoutMs: 5000 });
      if (r.ok || !["TIMEOUT", "UNAVAILABLE"].includes(r.error.code)) return r;
      await sleep(clock, 20_000);
    }
    return r;
  };

  /** One round of checks; true when the machine looks fine afterwards. */
  const round = async (why: string): Promise<boolean> => {
    let fine = true;
    const s = await ask(safety.status, {});
    if (!s.ok) return false;
    if (s.value.tripped) {
      const reset = await ask(safety.reset, { performedBy: by });
      deps.event("technician.safety_reset", {
        why,
        ok: reset.ok,
        ...(reset.ok ? {} : { error: reset.error.message }),
      });
      if (!reset.ok) fine = false;
      await sleep(clock, 2000);
    }
    const o = await ask(oven.status, {});
    if (o.ok && o.value.state === "fault") {
      const reset = await ask(oven.reset, {});
      deps.event("technician.oven_reset", {
        why,
        ok: reset.ok,
        ...(reset.ok ? {} : { error: reset.error.message }),
      });
      if (!reset.ok) fine = false;
    } else if (!o.ok) fine = false;
    const a = await ask(arm.status, {});
    if (a.ok && a.value.fault) {
      const reset = await ask(arm.reset, {});
      deps.event("technician.arm_reset", {
        why,
        ok: reset.ok,
        ...(reset.ok ? {} : { error: reset.error.message }),
      });
      if (!reset.ok) fine = false;
    } else if (!a.ok) fine = false;
    const inv = await ask(carousel.inventory, {});
    if (inv.ok && inv.value.salesStopped) {
      const removed = deps.clearDiscarded();
      const serviced = await ask(carousel.service, {
        performedBy: by,
        note: `storage checked after ${why}; ${removed} discarded pizza(s) removed`,
      });
      deps.event("technician.storage_service", { why, ok: serviced.ok, removed });
      fine = false;
    } else if (!inv.ok) fine = false;
    return fine;
  };

  /** A visit: rounds until the machine looks fine, at most six, five minutes apart. */
  const visit = async (why: string) => {
    visits++;
    try {
      deps.event("technician.arrive", { why });
      for (let i = 0; i < 6; i++) {
        if (await round(why)) break;
        await sleep(clock, 5 * 60_000);
      }
      deps.event("technician.leave", { why });
    } finally {
      visits--;
    }
  };

  const apply = async (f: ScheduledFault) => {
    const heal = healOf(f);
    const healAt = heal === null ? null : f.atMs + deps.startMs + heal;
    const what = f.type;
    deps.event("fault.start", { fault: f.index, type: what, healInMs: heal });
    const signal = signalOf[f.type];
    if (signal) {
      plant.set(signal, true);
      if (healAt !== null) {
        at(healAt, () => {
          plant.set(signal, false);
          deps.event("fault.heal", { fault: f.index, type: what });
          if (needsVisit.has(f.type)) at(clock.now() + visitDelayMs, () => visit(what));
        });
      }
      return;
    }
    switch (f.type) {
      case "gatewayDown":
        hardware.payment.setGatewayDown(true);
        if (healAt !== null) {
          at(healAt, () => {
            hardware.payment.setGatewayDown(false);
            deps.event("fault.heal", { fault: f.index, type: what });
          });
        }
        return;
      case "natsPartition": {
        const pattern = f.component === "all" ? ">" : `fornax.${deps.machineId}.${f.component}.>`;
        if (!deps.busFaults) {
          deps.event("fault.skipped", { fault: f.index, type: what, why: "real NATS" });
          return;
        }
        deps.busFaults.partition(pattern);
        if (healAt !== null) {
          at(healAt, () => {
            deps.busFaults!.heal(pattern);
            deps.event("fault.heal", { fault: f.index, type: what });
            at(clock.now() + visitDelayMs, () => visit(what));
          });
        }
        return;
      }
      case "busFaults": {
        if (!deps.busFaults) {
          deps.event("fault.skipped", { fault: f.index, type: what, why: "real NATS" });
          return;
        }
        deps.busFaults.set({
          dropProbability: f.dropProbability,
          duplicateProbability: f.duplicateProbability,
          ...(f.delayMs ?? deps.baseBusFaults.delay
            ? { delay: f.delayMs ?? deps.baseBusFaults.delay! }
            : {}),
        });
        if (healAt !== null) {
          at(healAt, () => {
            deps.busFaults!.set(deps.baseBusFaults);
            deps.event("fault.heal", { fault: f.index, type: what });
          });
        }
        return;
      }
      case "powerLoss":
        if (!deps.controller.running) {
          deps.event("fault.skipped", { fault: f.index, type: what, why: "already off" });
          return;
        }
        deps.controller.powerLoss();
        deps.power?.(false);
        if (healAt !== null) {
          at(healAt, async () => {
            if (deps.controller.running) return;
            deps.power?.(true);
            await deps.controller.boot();
            deps.event("fault.heal", {
              fault: f.index,
              type: what,
              boot: deps.controller.bootCount,
            });
            at(clock.now() + 10 * 60_000, () => visit(what));
          });
        }
        return;
      case "restock": {
        const removed = deps.clearDiscarded();
        const items = f.lines.map((l) => ({
          pizzaId: l.pizzaId,
          quantity: l.quantity,
          storageSlot: l.storageSlot,
          expiresAt: deps.startMs + Math.round(l.expiresInH * 3_600_000),
        }));
        // One key per visit: a retry after a lost reply must not load the pizzas again.
        const r = await ask(carousel.restock, {
          items,
          performedBy: f.performedBy,
          idempotencyKey: `restock-${f.index}`,
        });
        if (r.ok) deps.restocked(items);
        deps.event("technician.restock", {
          fault: f.index,
          ok: r.ok,
          removed,
          quantity: items.reduce((s, i) => s + i.quantity, 0),
          ...(r.ok ? {} : { error: r.error.message }),
        });
        return;
      }
      case "maintenance": {
        const on = await ask(supervisor.maintenance, { enable: true, reason: f.reason });
        deps.event("technician.maintenance", { fault: f.index, enable: true, ok: on.ok });
        if (healAt !== null) {
          at(healAt, async () => {
            const off = await ask(supervisor.maintenance, { enable: false, reason: f.reason });
            deps.event("technician.maintenance", { fault: f.index, enable: false, ok: off.ok });
          });
        }
        return;
      }
    }
  };

  for (const f of faults) at(deps.startMs + f.atMs, () => apply(f));

  const removed = new Set<string>();
  /** Opens the pickup door for the abandoned pizza and takes it away. */
  const removeAbandoned = async (orderId: string) => {
    visits++;
    try {
      for (let i = 0; i < 6; i++) {
        const r = await ask(arm.openDoor, { orderId });
        deps.event("technician.remove_abandoned", {
          orderId,
          ok: r.ok,
          ...(r.ok ? {} : { error: r.error.message }),
        });
        if (r.ok) {
          removed.add(orderId);
          return;
        }
        if (/already taken|not in the pickup area/.test(r.error.message)) return;
        await sleep(clock, 60_000);
      }
    } finally {
      visits--;
    }
  };

  return {
    pending: () => pending,
    visiting: () => visits,
    callTechnician: (why) => void visit(why),
    removeAbandoned: (orderId) =>
      at(clock.now() + abandonedPickupDelayMs, () => removeAbandoned(orderId)),
    removedByStaff: removed,
  };
}
