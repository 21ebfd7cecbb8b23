/**
 * The simulated world of one machine: a virtual clock, the simulated NATS
 * server, the plant and its devices, the journal, the controller computer, the
 * customers and the technicians. `runWorld` plays one scenario to its end and
 * returns what happened; the same scenario and seed give the same bytes.
 */
import { TypedBus } from "../../bus/typed_bus.ts";
import type { Bus } from "../../bus/bus.ts";
import { openJournal } from "../../journal/journal.ts";
import { silentLogger } from "../../log/log.ts";
import { createSimHardware } from "../../controller/assemble.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import type { Clock } from "../../clock/clock.ts";
import {
  type BusFaultOptions,
  type BusTapEvent,
  createSimBus,
  type SimBusFaults,
} from "../sim_bus.ts";
import { createVirtualClock, RunawayError } from "../virtual_clock.ts";
import type { ResolvedScenario, RunMode } from "../scenario.ts";
import { InvariantChecker, type Violation } from "../invariants.ts";
import { EventLog } from "./event_log.ts";
import { Observer } from "./observer.ts";
import { PhysicalStock } from "./physical_stock.ts";
import { type CustomerCrowd, type CustomerRecord, startCustomers } from "./customers.ts";
import { SimController } from "./controller.ts";
import { scheduleFaults } from "./technician.ts";
import { stream } from "./streams.ts";

/** Options of {@linkcode runWorld}. */
export interface WorldOptions {
  resolved: ResolvedScenario;
  seed: number;
  mode: RunMode;
  /**
   * Kiosks resend every request after a timeout (under its idempotency key), and
   * the bus duplicates messages: nothing may happen twice.
   */
  idempotence?: boolean;
  /** Where the event log goes (hashing always). */
  log: EventLog;
  /** Called with the fraction of the run done, now and then. */
  onProgress?: (fraction: number, simulatedMs: number) => void;
  /** Clock ms between the actors' heartbeats (default: the scenario's). */
  heartbeatMs?: number;
  /** Where the world runs (default: virtual time on the simulated bus). */
  env?: (o: EnvOptions) => Promise<WorldEnv>;
}

/** What an environment is built from. */
export interface EnvOptions {
  startMs: number;
  seed: number;
  faults: BusFaultOptions;
  machineId: string;
}

/** Where a world runs: its clock, its NATS, and how time is made to pass. */
export interface WorldEnv {
  clock: Clock;
  /** Opens a connection named `name`. */
  connect(name: string): Bus | Promise<Bus>;
  /** Fault switches of the simulated bus; null on a real server. */
  busFaults: SimBusFaults | null;
  /** Calls `fn` for every message sent on the machine's subjects (and losses, when known). */
  observe(fn: (e: BusTapEvent) => void): void | Promise<void>;
  /** Lets time pass until clock time `timeMs`. */
  runUntil(timeMs: number): Promise<void>;
  /** Lets time pass until `p` settles. */
  drive<T>(p: Promise<T>): Promise<T>;
  /** Timers fired so far (0 when not known). */
  timersFired(): number;
  close(): Promise<void>;
}

/** The default environment: a virtual clock and the simulated bus, deterministic. */
export function virtualEnv(o: EnvOptions): Promise<WorldEnv> {
  const clock = createVirtualClock(o.startMs);
  const simBus = createSimBus({
    clock,
    random: stream(o.seed, "bus"),
    faults: o.faults,
    name: "world",
  });
  return Promise.resolve({
    clock,
    connect: (name) => simBus.connect(name),
    busFaults: simBus.faults,
    observe: (fn) => void simBus.tap(fn),
    runUntil: async (t) => void await clock.runUntil(Math.max(t, clock.now())),
    drive: async <T>(p: Promise<T>): Promise<T> => {
      let settled = false;
      const done = p.finally(() => void (settled = true));
      while (!settled && (await clock.step()));
      return await done;
    },
    timersFired: () => clock.firedCount,
    close: () => simBus.close(),
  });
}

/** What a run produced. */
export interface WorldResult {
  violations: Violation[];
  firstViolation: Violation | null;
  observer: Observer;
  customers: CustomerRecord[];
  startMs: number;
  endMs: number;
  /** End of the customers' day (drain and probe come after). */
  dayEndMs: number;
  timersFired: number;
  busMessages: number;
  ovenEnergyWh: number;
  maxOvenTempC: number;
  ovenSamples: { t: number[]; c: number[] };
  boots: number;
  /** Gateway money by order: captured cents. */
  revenueCents: number;
  journalOrders: { orderId: string; status: string; pizzaId: string; placedAt: number }[];
}

const decoder = new TextDecoder();
const hourMs = 3_600_000;

const keys = new Map<string, string | null>();

/** `component.name` of an event subject (`fornax.<m>.<component>.evt.<name>`), else null. */
function eventKey(subject: string): string | null {
  // Replies go to one-off inboxes: caching those would only churn the cache.
  if (subject.startsWith("_INBOX.")) return null;
  let key = keys.get(subject);
  if (key === undefined) {
    const parts = subject.split(".");
    key = parts.length === 5 && parts[0] === "fornax" && parts[3] === "evt"
      ? `${parts[2]}.${parts[4]}`
      : null;
    if (keys.size > 10_000) keys.clear();
    keys.set(subject, key);
  }
  return key;
}

const observed = new Set([
  "order.updated",
  "payment.changed",
  "payment.cash_out",
  "oven.cooked",
  "oven.temperature",
  "oven.fault",
  "arm.moved",
  "arm.taken",
  "arm.fault",
  "carousel.retrieved",
  "carousel.discarded",
  "carousel.changed",
  "carousel.sales",
  "safety.tripped",
  "supervisor.machine",
  "plant.changed",
]);

/** Plays `o.resolved` in virtual time and judges it. */
export async function runWorld(o: WorldOptions): Promise<WorldResult> {
  const { resolved, seed, log } = o;
  const { scenario, config, startMs } = resolved;
  const machineId = scenario.machine.machineId;
  const dayEndMs = startMs + resolved.durationMs;
  const baseFaults: BusFaultOptions = {
    dropProbability: scenario.bus.dropProbability,
    duplicateProbability: o.idempotence
      ? Math.max(0.05, scenario.bus.duplicateProbability)
      : scenario.bus.duplicateProbability,
    ...(scenario.bus.delayMs
      ? { delay: scenario.bus.delayMs }
      : o.idempotence
      ? { delay: { minMs: 0, maxMs: 40 } }
      : {}),
  };
  const env = await (o.env ?? virtualEnv)({ startMs, seed, faults: baseFaults, machineId });
  const clock = env.clock;
  const observer = new Observer();
  const physical = new PhysicalStock();
  for (const line of resolved.stock) {
    physical.load(line.pizzaId, line.storageSlot, line.quantity, line.expiresAt);
  }
  const hardware = createSimHardware(clock, config, {
    gatewayLatencyMs: scenario.machine.gatewayLatencyMs,
    random: stream(seed, "thermocouple"),
  });
  const journal = openJournal(":memory:");

  const deferred: Array<() => void> = [];
  const checker = new InvariantChecker({
    mode: o.mode,
    config,
    plant: hardware.plant,
    arm: hardware.arm,
    ledger: hardware.payment.ledger,
    journal,
    observer,
    physical,
    startStock: physical.total(),
    now: () => clock.now(),
    defer: (fn) => {
      deferred.push(fn);
      if (deferred.length === 1) {
        clock.setTimeout(() => {
          for (const f of deferred.splice(0)) f();
        }, 0);
      }
    },
  });

  let busMessages = 0;
  await env.observe((e: BusTapEvent) => {
    if (e.type === "deliver") {
      // Deliveries are implied by the sends; only the extra copy of a duplicate is news.
      if (e.duplicate) {
        log.write(
          `{"t":${e.timeMs},"k":"dup","c":${JSON.stringify(e.connection)},"s":${
            JSON.stringify(e.subject)
          }}`,
        );
      }
      return;
    }
    if (e.type === "send") {
      const text = decoder.decode(e.data);
      busMessages++;
      log.write(
        `{"t":${e.timeMs},"k":"send","c":${JSON.stringify(e.connection)},"s":${
          JSON.stringify(e.subject)
        }${e.reply ? `,"r":${JSON.stringify(e.reply)}` : ""},"d":${text}}`,
      );
      const key = eventKey(e.subject);
      if (key && (observed.has(key) || key.endsWith(".alert"))) {
        const msg = JSON.parse(text) as Record<string, unknown>;
        observer.onEvent(e.timeMs, key, msg);
        checker.onEvent(e.timeMs, key, msg);
        if (
          key === "order.alert" && msg.type === "PIZZA_ABANDONED" && msg.resolved === false &&
          typeof msg.orderId === "string"
        ) onAbandoned(msg.orderId);
        if (key === "carousel.discarded") {
          // A discarded pizza stays in its slot until staff take it out, unless it
          // already left storage for an order that then failed.
          const gone = typeof msg.orderId === "string" &&
            observer.orders.get(msg.orderId)?.retrieved != null;
          if (!gone) physical.discarded(Number(msg.storageSlot));
        }
      }
    } else {
      log.write(
        `{"t":${e.timeMs},"k":"drop","c":${JSON.stringify(e.connection)},"s":${
          JSON.stringify(e.subject)
        },"why":${JSON.stringify(e.reason ?? "fault")}}`,
      );
    }
  });
  const event = (kind: string, fields: Record<string, unknown> = {}) => {
    log.event(clock.now(), kind, fields);
    // What the schedule did to the machine counts among the faults seen.
    if (kind === "fault.start" && fields.type !== "restock" && fields.type !== "maintenance") {
      observer.fault(clock.now(), String(fields.type), "injected by the scenario");
    }
  };
  let onAbandoned = (_orderId: string) => {};

  const controller = new SimController({
    machineId,
    clock,
    connect: (name) => env.connect(name),
    randomFor: (i) => stream(seed, `controller/${i}`),
    logSink: (level, line) => {
      if (level !== "debug") log.write(line);
    },
    config,
    journal,
    hardware,
    initialStock: resolved.stock,
    heartbeatMs: o.heartbeatMs ?? scenario.machine.heartbeatMs,
    watch: {
      armMove: (to) => checker.onArmMove(to),
      door: (open) => checker.onDoor(open),
      ejected: (slot) => void physical.eject(slot),
    },
  });

  const world = async (name: string) =>
    new TypedBus(await env.connect(name), {
      clock,
      random: stream(seed, name),
      log: silentLogger,
      machineId,
    });
  const kiosk = await world("kiosk");
  const tech = await world("tech");

  let restocked = 0;
  let offChanges: number | null = null;
  let removedByStaff: ReadonlySet<string> = new Set();
  let crowd: CustomerCrowd | null = null;
  let error: unknown = null;
  let machineStatus: string | null = null;
  let drained = false;
  let openAtEnd = "";
  let probe: CustomerRecord | null | "skipped" = "skipped";
  const journalOpen = () =>
    (journal.prepare("SELECT COUNT(*) AS n FROM orders WHERE stage <> 'done'").get() as {
      n: number;
    }).n +
    (journal.prepare("SELECT COUNT(*) AS n FROM payment_ops WHERE state = 'STARTED'").get() as {
      n: number;
    }).n;

  const drive = <T>(p: Promise<T>) => env.drive(p);
  const runFor = (ms: number) => env.runUntil(clock.now() + ms);

  try {
    event("run.start", {
      scenario: scenario.name,
      seed,
      mode: o.mode,
      idempotence: o.idempotence ?? false,
      start: scenario.start,
      durationH: scenario.durationH,
    });
    // Every step of the real oven, however seldom the controller reads it.
    hardware.oven.model.watch((atMs, tempC) => checker.onOvenStep(atMs, tempC));
    await controller.boot();
    crowd = startCustomers({
      kiosk,
      clock,
      arrivals: stream(seed, "arrivals"),
      behaviour: stream(seed, "customers"),
      profile: scenario.customers,
      acceptedCents: config.acceptedCents,
      utcOffsetMin: config.utcOffsetMin,
      untilMs: dayEndMs,
      policy: o.idempotence
        ? { resendAll: true, timeoutMs: 1500, resends: 3 }
        : { resendAll: false, timeoutMs: 5000, resends: 2 },
      event,
    });
    const faults = scheduleFaults({
      clock,
      machineId,
      tech,
      hardware,
      controller,
      busFaults: env.busFaults,
      baseBusFaults: baseFaults,
      startMs,
      event,
      clearDiscarded: () => physical.removeDiscarded(),
      power: (on) => {
        // A dead computer writes nothing: its journal must not change while it is off.
        const changes = (journal.prepare("SELECT total_changes() AS n").get() as { n: number }).n;
        event(on ? "power.on" : "power.off", { journalChanges: changes });
        if (!on) offChanges = changes;
        else if (offChanges !== null && changes !== offChanges) {
          checker.violate({
            invariant: "power-loss-clean",
            atMs: clock.now(),
            message: `The journal changed ${
              changes - offChanges
            } time(s) while the controller was off`,
          });
        }
      },
      restocked: (items) => {
        for (const i of items) {
          physical.load(i.pizzaId, i.storageSlot, i.quantity, i.expiresAt);
          restocked += i.quantity;
        }
      },
    }, resolved.faults);
    onAbandoned = (orderId) => faults.removeAbandoned(orderId);
    removedByStaff = faults.removedByStaff;

    // The day, in slices, so that progress can be told.
    const sliceMs = 10 * 60_000;
    const total = resolved.durationMs + scenario.drainMaxMin * 60_000;
    let outOfServiceSinceMs: number | null = null;
    let lastCall = -Infinity;
    const watchService = () => {
      // A technician comes when the machine stays out of service for 15 minutes.
      const status = observer.machine.at(-1)?.status ?? "OPERATIONAL";
      if (status === "OPERATIONAL" || status === "DEGRADED") outOfServiceSinceMs = null;
      else outOfServiceSinceMs ??= clock.now();
      if (
        outOfServiceSinceMs !== null && clock.now() - outOfServiceSinceMs > 15 * 60_000 &&
        faults.visiting() === 0 && clock.now() - lastCall > 30 * 60_000 && controller.running
      ) {
        lastCall = clock.now();
        faults.callTechnician(`machine ${status} for 15 min`);
      }
    };
    while (clock.now() < dayEndMs) {
      await env.runUntil(Math.min(dayEndMs, clock.now() + sliceMs));
      watchService();
      o.onProgress?.((clock.now() - startMs) / total, clock.now() - startMs);
    }
    crowd.stopArrivals();
    event("day.end", { customers: crowd.records.length });

    // Drain: let every order end (liveness); safety mode does not judge whether
    // orders end, so there it only lets the machine settle for a while.
    const drainMin = o.mode === "safety"
      ? Math.min(scenario.drainMaxMin, 15)
      : scenario.drainMaxMin;
    const drainEnd = dayEndMs + drainMin * 60_000;
    const minuteMs = 60_000;
    while (clock.now() < drainEnd) {
      const quiet = crowd.active() === 0 && faults.pending() === 0 && faults.visiting() === 0;
      if (quiet && journalOpen() === 0 && controller.running) {
        drained = true;
        break;
      }
      await env.runUntil(Math.min(drainEnd, clock.now() + minuteMs));
      watchService();
      o.onProgress?.((clock.now() - startMs) / total, clock.now() - startMs);
    }
    if (!drained && crowd.active() === 0 && journalOpen() === 0 && controller.running) {
      drained = true;
    }
    if (!drained) {
      openAtEnd = [
        crowd.active() ? `${crowd.active()} customer(s) still at the machine` : "",
        faults.pending() ? `${faults.pending()} fault event(s) still scheduled` : "",
        faults.visiting() ? `${faults.visiting()} technician visit(s) under way` : "",
        journalOpen() ? `${journalOpen()} order(s) or payment operation(s) open` : "",
        controller.running ? "" : "the controller is off",
      ].filter(Boolean).join(", ");
    }
    if (o.mode === "liveness" && controller.running) {
      // Back in service: the supervisor says so, and one more customer is served.
      const ask = () => drive(tech.request(supervisor.status, {}, { timeoutMs: 5000 }));
      let status = await ask();
      for (let i = 0; i < 10 && !(status.ok && status.value.status === "OPERATIONAL"); i++) {
        await runFor(60_000);
        status = await ask();
      }
      machineStatus = status.ok ? status.value.status : null;
      const sellable = journal.prepare(
        `SELECT pizza_id AS pizzaId FROM carousel_items
          WHERE quantity > 0 AND expires_at > ? ORDER BY expires_at, item_id LIMIT 1`,
      ).get(clock.now() + 3 * hourMs) as { pizzaId: string } | undefined;
      if (sellable && machineStatus === "OPERATIONAL") {
        event("probe.start", { pizzaId: sellable.pizzaId });
        const done: { c: CustomerRecord | null } = { c: null };
        void crowd.probe(sellable.pizzaId).then((c) => void (done.c = c));
        const until = clock.now() + 60 * 60_000;
        while (!done.c && clock.now() < until) await runFor(60_000);
        probe = done.c ?? {
          ...crowd.records.at(-1)!,
          outcome: "still waiting after 60 minutes",
        };
        for (let i = 0; i < 30 && journalOpen() > 0; i++) await runFor(60_000);
      }
    }
  } catch (err) {
    error = err;
  }

  if (error) {
    const runaway = error instanceof RunawayError;
    checker.violate({
      invariant: "run-error",
      atMs: clock.now(),
      message: runaway
        ? `${(error as RunawayError).message}`
        : `The run failed: ${error instanceof Error ? error.stack ?? error.message : error}`,
    });
  }
  const endMs = clock.now();
  // Integrates the oven to the end, so the checker hears of its last steps.
  const ovenEnergyWh = hardware.plant.snapshot().ovenEnergyWh;
  const customers = crowd?.records ?? [];
  const violations = checker.finish({
    customers,
    restocked,
    removedByStaff,
    drained,
    openAtEnd,
    machineStatus,
    probe: error ? "skipped" : probe,
  });
  event("run.end", {
    violations: violations.length,
    first: checker.first()?.invariant ?? null,
  });

  const journalOrders = (journal.prepare(
    "SELECT order_id, status, order_json FROM orders ORDER BY rowid",
  ).all() as { order_id: string; status: string; order_json: string }[]).map((r) => {
    const order = JSON.parse(r.order_json) as { pizzaId: string; placedAt: number };
    return {
      orderId: r.order_id,
      status: r.status,
      pizzaId: order.pizzaId,
      placedAt: order.placedAt,
    };
  });
  let revenueCents = 0;
  for (const row of journalOrders) {
    if (row.status !== "DISPENSED") continue;
    const cap = hardware.payment.ledger.captures(row.orderId);
    if (cap.length > 0) revenueCents += cap[0]!.amountCents;
    else {
      const p = journal.prepare(
        "SELECT method, amount_cents FROM payments WHERE order_id = ? AND status = 'COMPLETED'",
      ).get(row.orderId) as { method: string; amount_cents: number } | undefined;
      if (p?.method === "CASH") revenueCents += p.amount_cents;
    }
  }

  // A graceful end: stop what runs, close what is open; pending timers never fire.
  if (controller.running) {
    await env.drive(controller.shutdown()).catch(() => {});
  }
  controller.powerLoss();
  hardware.dispose();
  await env.close();
  journal.close();

  return {
    violations,
    firstViolation: checker.first(),
    observer,
    customers,
    startMs,
    endMs,
    dayEndMs,
    timersFired: env.timersFired(),
    busMessages,
    ovenEnergyWh,
    maxOvenTempC: checker.maxOvenTempC,
    ovenSamples: checker.ovenSamples(),
    boots: controller.bootCount,
    revenueCents,
    journalOrders,
  };
}
