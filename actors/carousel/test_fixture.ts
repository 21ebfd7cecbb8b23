/**
 * Shared by the carousel's tests: a carousel actor on real NATS over the
 * simulated carousel, with every carousel event recorded.
 */
import { testActorContext, testConfig as baseConfig, testPizza } from "../../testing/fixtures.ts";
import { connectTestBus, type TestBus, waitFor } from "../../testing/nats.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { createSimCarousel, type SimCarousel } from "../../hardware/sim/carousel.ts";
import { type Journal, openJournal } from "../../journal/journal.ts";
import type { CarouselDriver } from "../../hardware/carousel.ts";
import { createCryptoRandom } from "../../random/random.ts";
import type { CommandDef, EventDef, EventPayload, Result } from "../../protocol/define.ts";
import { alert } from "../../protocol/common.ts";
import * as carousel from "../../protocol/carousel.ts";
import type { RunningActor } from "../actor.ts";
import { type CarouselOptions, startCarousel } from "./mod.ts";

/** A machine with three pizzas and twelve slots. */
export const testConfig = baseConfig({
  menu: ["margherita", "pepperoni", "veggie"].map((pizzaId) =>
    testPizza({ pizzaId, name: pizzaId })
  ),
  storageSlots: 12,
  lowStockThreshold: 2,
});

/** Everything the carousel published, by event. */
export interface Recorded {
  changed: number;
  /** What each `changed` event said was available. */
  available: Record<string, number>[];
  discarded: EventPayload<typeof carousel.discarded>[];
  retrieved: EventPayload<typeof carousel.retrieved>[];
  sales: { stopped: boolean; reason: string | null }[];
  temperatures: { storageTempC: number; salesStopped: boolean; ts: number }[];
  alerts: { type: string; severity: string; message: string; resolved: boolean }[];
}

/** A running carousel under test. */
export interface Rig {
  tb: TestBus;
  plant: SimPlant;
  sim: SimCarousel;
  journal: Journal;
  actor: RunningActor;
  events: Recorded;
  /** Calls a carousel command with a 5 s wall deadline. */
  call<Q, R>(def: CommandDef<Q, R>, payload: Q): Promise<Result<R>>;
  /** Sends `body` (wrapped in a valid envelope) without client-side validation. */
  rawCall(def: CommandDef<unknown, unknown>, body: unknown): Promise<Result<unknown>>;
  /** Calls and asserts success. */
  must<Q, R>(def: CommandDef<Q, R>, payload: Q): Promise<R>;
  /** Stops the actor only (journal and bus stay open). */
  stopActor(): Promise<void>;
  /** Starts a new actor on the same bus, plant and journal. */
  restartActor(options?: Partial<CarouselOptions>): void;
  close(): Promise<void>;
}

/** Options of {@linkcode startRig}. */
export interface RigOptions {
  speed?: number;
  journalPath?: string;
  /** Reuse a machine id (a restarted controller keeps its id). */
  machineId?: string;
  carousel?: Partial<CarouselOptions>;
  /** Wraps the sim driver (e.g. to hold a rotation at a test's gate). */
  driver?: (sim: CarouselDriver) => CarouselDriver;
}

/** Starts the rig: test bus, plant, sim carousel, journal and the actor. */
export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const speed = options.speed ?? 1000;
  const tb = await connectTestBus({
    speed,
    ...(options.machineId ? { machineId: options.machineId } : {}),
  });
  const plant = new SimPlant(tb.clock, 22);
  const sim = createSimCarousel(plant, { slots: testConfig.storageSlots });
  const driver = options.driver ? options.driver(sim.driver) : sim.driver;
  const journal = openJournal(options.journalPath ?? ":memory:");
  const random = createCryptoRandom();
  const ctx = testActorContext(tb, testConfig);
  const events: Recorded = {
    changed: 0,
    available: [],
    discarded: [],
    retrieved: [],
    sales: [],
    temperatures: [],
    alerts: [],
  };
  const subs = [
    sub(tb, carousel.changed, (m) => {
      events.changed++;
      events.available.push(m.inventory.available);
    }),
    sub(tb, carousel.discarded, (m) => events.discarded.push(m)),
    sub(tb, carousel.retrieved, (m) => events.retrieved.push(m)),
    sub(tb, carousel.sales, (m) => events.sales.push({ stopped: m.stopped, reason: m.reason })),
    sub(tb, carousel.temperature, (m) =>
      events.temperatures.push({
        storageTempC: m.storageTempC,
        salesStopped: m.salesStopped,
        ts: m.ts,
      })),
    sub(tb, alert.carousel, (m) =>
      events.alerts.push({
        type: m.type,
        severity: m.severity,
        message: m.message,
        resolved: m.resolved,
      })),
  ];
  await tb.raw.flush();
  const start = (extra: Partial<CarouselOptions> = {}) =>
    startCarousel(ctx, driver, { journal, ...options.carousel, ...extra });
  let actor = start();
  const call = <Q, R>(def: CommandDef<Q, R>, payload: Q) =>
    tb.bus.request(def, payload, { timeoutMs: 5000 * speed });
  const rig: Rig = {
    tb,
    plant,
    sim,
    journal,
    get actor() {
      return actor;
    },
    events,
    call,
    async rawCall(def, body) {
      const envelope = { id: random.uuid(), machineId: tb.machineId, ts: tb.clock.now() };
      const data = await tb.raw.request(
        def.subject(tb.machineId),
        new TextEncoder().encode(JSON.stringify({ ...envelope, ...(body as object) })),
        5000 * speed,
      );
      return JSON.parse(new TextDecoder().decode(data)) as Result<unknown>;
    },
    async must(def, payload) {
      const r = await call(def, payload);
      if (!r.ok) throw new Error(`${def.verb} failed: ${r.error.code} ${r.error.message}`);
      return r.value;
    },
    stopActor: () => actor.stop(),
    restartActor(extra) {
      actor = start(extra);
    },
    async close() {
      await actor.stop();
      for (const u of subs) u();
      sim.model.dispose();
      await tb.close();
      journal.close();
    },
  };
  return rig;
}

function sub<P>(tb: TestBus, def: EventDef<P>, fn: (m: P & { ts: number }) => void) {
  return tb.bus.subscribe(def, tb.machineId, fn);
}

/** Waits (up to `timeoutMs` wall) until `check` holds. */
export function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<true> {
  return waitFor(what, () => (check() ? true : undefined), timeoutMs);
}

/** Epoch ms `days` after now on the rig's clock. */
export function daysFromNow(rig: Rig, days: number): number {
  return rig.tb.clock.now() + days * 86_400_000;
}
