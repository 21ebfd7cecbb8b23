/**
 * The carousel actor's host: binds the carousel machine to the bus, the
 * driver and the journal. Stock and reservations live in the journal, so a
 * restarted controller keeps both; food-safety rules run on every probe
 * reading (every 10 s) and before every reservation and retrieval.
 */
import { createActor, fromCallback, fromPromise } from "xstate";
import { every } from "../../clock/clock.ts";
import { type Journal, transaction } from "../../journal/journal.ts";
import type { CarouselDriver } from "../../hardware/carousel.ts";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import { fail, ok, type Result } from "../../protocol/define.ts";
import { keyRetentionMs, keyReused, requestFingerprint } from "../../protocol/idempotency.ts";
import { alert } from "../../protocol/common.ts";
import type { Alert } from "../../protocol/entities.ts";
import {
  changed,
  discarded,
  type Inventory,
  inventory,
  release,
  reserve,
  restock,
  RestockLine as RestockLineSchema,
  retrieve,
  retrieved,
  sales,
  service,
  temperature,
} from "../../protocol/carousel.ts";
import type { z } from "zod";
import { type CarouselEvent, carouselMachine, type RetrievalJob } from "./machine.ts";
import { CarouselStore, type FoodSafetyEntry, type Reservation, type StoredItem } from "./store.ts";
import { checkRestock, type SlotContent } from "./restock.ts";
import {
  COLD_LIMIT_C,
  discardReason,
  intervalAboveLimit,
  isAboveLimit,
  pendingAboveLimitMs,
  RESTOCK_GRACE_MS,
  SALE_MARGIN_MS,
  type TempSample,
} from "./food_safety.ts";

export { CarouselStore } from "./store.ts";
export type { FoodSafetyEntry, Reservation, StoredItem } from "./store.ts";

/** A restock line (pizzaId, quantity, storageSlot, expiresAt). */
export type RestockLine = z.infer<typeof RestockLineSchema>;

/** Options of {@linkcode startCarousel}. */
export interface CarouselOptions {
  /** The machine journal; the carousel keeps its tables there. */
  journal: Journal;
  /** Loaded on the first start only: when the journal was never stocked. */
  initialStock?: RestockLine[];
  /** Pizzas one slot holds (default 20). */
  slotCapacity?: number;
  /** Probe reading and food-safety check period (default 10 s). */
  sampleEveryMs?: number;
  /** Deadline of one rotation (default 30 s). */
  rotateTimeoutMs?: number;
  /** Deadline of one ejection (default 20 s). */
  ejectTimeoutMs?: number;
  /** A reservation never retrieved nor released is dropped after this (default 2 h). */
  reservationTtlMs?: number;
}

type AlertPayload = Omit<z.infer<typeof Alert>, "machineId">;

/** Finished reservations are kept this long so repeated `retrieve` calls still get DONE. */
const FINISHED_RESERVATION_KEEP_MS = 24 * 3_600_000;
/** Marks a reservation whose order was refunded while its pizza was being ejected. */
const RELEASED_AT_HATCH = "released during retrieval";
/** Cold readings are journalled at least this often, bounding the gap a restart must guess. */
const SAMPLE_PERSIST_EVERY_MS = 60_000;
/** A storage temperature event comes on every change of the reading and at least this often. */
const TEMPERATURE_KEEPALIVE_MS = 60_000;

/**
 * Starts the carousel actor: serves `protocol/carousel.ts` commands and
 * publishes its events on `ctx.bus`, driving `driver`.
 *
 * @throws {RangeError} When `options.initialStock` does not fit this machine (menu, slots).
 * @example
 * ```ts
 * const journal = openJournal("data/journal.db");
 * const { driver } = createSimCarousel(plant, { slots: config.storageSlots });
 * const carousel = startCarousel(ctx, driver, { journal, initialStock });
 * // ... later
 * await carousel.stop();
 * ```
 */
export function startCarousel(
  ctx: ActorContext,
  driver: CarouselDriver,
  options: CarouselOptions,
): RunningActor {
  const { bus, clock, random, config } = ctx;
  const log = ctx.log.child("carousel");
  const db = options.journal;
  const store = new CarouselStore(db);
  const menuPizzaIds = new Set(config.menu.map((p) => p.pizzaId));
  const slotCapacity = options.slotCapacity ?? 20;
  const sampleEveryMs = options.sampleEveryMs ?? 10_000;
  const reservationTtlMs = options.reservationTtlMs ?? 2 * 3_600_000;

  // ---- Stock ----

  const occupancy = (): Map<number, SlotContent> => {
    const slots = new Map<number, SlotContent>();
    for (const item of store.items()) {
      const c = slots.get(item.storageSlot);
      slots.set(item.storageSlot, {
        pizzaId: item.pizzaId,
        quantity: (c?.quantity ?? 0) + item.quantity,
      });
    }
    return slots;
  };

  const insertLines = (lines: readonly RestockLine[], nowMs: number): void => {
    for (const line of lines) {
      store.insertItem({
        itemId: random.uuid(),
        pizzaId: line.pizzaId,
        storageSlot: line.storageSlot,
        quantity: line.quantity,
        expiresAt: line.expiresAt,
        addedAt: nowMs,
        aboveLimitMs: 0,
      });
    }
  };

  const describeLines = (lines: readonly RestockLine[]) =>
    lines.map((l) => `${l.quantity} x ${l.pizzaId} in slot ${l.storageSlot}`).join(", ");

  if (!store.getState("stocked", false) && options.initialStock?.length) {
    const nowMs = clock.now();
    const parsed = RestockLineSchema.array().safeParse(options.initialStock);
    // Expired pizzas are in the machine all the same: they load, and the first sweep
    // discards them into the food-safety log.
    const checked = parsed.success
      ? checkRestock(parsed.data, occupancy(), {
        menuPizzaIds,
        storageSlots: config.storageSlots,
        slotCapacity,
        nowMs: -Infinity,
      })
      : fail("BAD_REQUEST", parsed.error.message);
    if (!checked.ok) throw new RangeError(`Initial stock refused: ${checked.error.message}`);
    const lines = options.initialStock;
    transaction(db, () => {
      insertLines(lines, nowMs);
      store.logMaintenance({
        logId: random.uuid(),
        atMs: nowMs,
        type: "RESTOCKING",
        performedBy: "initial stock",
        description: describeLines(lines),
      });
      store.setState("stocked", true);
    });
    log.log("info", "initial stock loaded", { lines: lines.length });
  }

  // ---- Food safety ----

  let lastSample = store.getState<TempSample | null>("lastSample", null);
  let lastSamplePersistedMs = lastSample?.atMs ?? -Infinity;
  let lastGoodTempC = store.getState<number | null>("lastGoodTempC", null);

  const isSellable = (item: StoredItem, nowMs: number) =>
    discardReason(item, lastSample, nowMs + SALE_MARGIN_MS) === null;

  const availableCounts = (nowMs: number): Record<string, number> => {
    const counts: Record<string, number> = {};
    for (const id of menuPizzaIds) counts[id] = 0;
    for (const item of store.items()) {
      if (isSellable(item, nowMs)) {
        counts[item.pizzaId] = (counts[item.pizzaId] ?? 0) + item.quantity;
      }
    }
    for (const r of store.activeReservations()) {
      if (r.status === "RESERVED") counts[r.pizzaId] = (counts[r.pizzaId] ?? 0) - 1;
    }
    for (const id of Object.keys(counts)) counts[id] = Math.max(0, counts[id]!);
    return counts;
  };

  // ---- Alerts and events ----

  const raiseAlert = (
    type: AlertPayload["type"],
    severity: AlertPayload["severity"],
    message: string,
    orderId?: string,
  ): AlertPayload => {
    const a: AlertPayload = {
      alertId: random.uuid(),
      type,
      severity,
      message,
      resolved: false,
      createdAt: clock.now(),
      resolvedAt: null,
      ...(orderId ? { orderId } : {}),
    };
    bus.publish(alert.carousel, a, orderId);
    log.log(severity === "INFO" ? "info" : "warn", "alert", { type, message });
    return a;
  };
  const resolveAlert = (a: AlertPayload | null): void => {
    if (a) bus.publish(alert.carousel, { ...a, resolved: true, resolvedAt: clock.now() });
  };

  let lowStockBaseline: Record<string, number> = {};
  const checkLowStock = (available: Record<string, number>): void => {
    const threshold = config.lowStockThreshold;
    for (const [pizzaId, count] of Object.entries(available)) {
      const before = lowStockBaseline[pizzaId] ?? Infinity;
      if (count < threshold && before >= threshold) {
        raiseAlert(
          "LOW_INVENTORY",
          "WARNING",
          `"${pizzaId}": ${count} available, below the low-stock threshold of ${threshold}`,
        );
      }
    }
    lowStockBaseline = available;
  };

  const snapshotInventory = (nowMs: number): Inventory => {
    const snap = actor.getSnapshot();
    return {
      items: store.items().map((i) => ({
        itemId: i.itemId,
        machineId: bus.machineId,
        pizzaId: i.pizzaId,
        quantity: i.quantity,
        storageSlot: i.storageSlot,
        expiresAt: i.expiresAt,
        addedAt: i.addedAt,
      })),
      available: availableCounts(nowMs),
      reservations: store.activeReservations().map((r) => ({
        orderId: r.orderId,
        pizzaId: r.pizzaId,
      })),
      // Before the probe's first reading ever, there is nothing better to report.
      storageTempC: lastGoodTempC ?? 0,
      salesStopped: snap.hasTag("salesStopped"),
      stopReason: snap.context.stopReason,
    };
  };

  /** The counts the last `changed` event announced. */
  let announcedAvailable = "";
  const stockChanged = (): void => {
    const inv = snapshotInventory(clock.now());
    announcedAvailable = JSON.stringify(inv.available);
    bus.publish(changed, { inventory: inv });
    checkLowStock(inv.available);
  };

  /**
   * A sweep that found nothing holds until `untilMs` (the first expiry or
   * reservation deadline then known) unless the store changed or storage warmed.
   */
  let quiet = { version: -1, untilMs: -Infinity };
  /** Discards what expired or spent too long warm; drops reservations nobody finished. */
  const sweep = (nowMs: number): void => {
    const warm = lastSample !== null && isAboveLimit(lastSample.tempC);
    if (!warm && store.version === quiet.version && nowMs < quiet.untilMs) return;
    const items = store.items();
    const doomed = items.flatMap((item) => {
      const reason = discardReason(item, lastSample, nowMs);
      return reason ? [{ item, reason }] : [];
    });
    const reservations = store.reservations();
    const dropped = reservations.filter((r) =>
      r.status === "RESERVED" && r.reservedAt < nowMs - reservationTtlMs
    );
    const forgotten = reservations.filter((r) =>
      (r.status === "DONE" || r.status === "FAILED") &&
      r.updatedAt < nowMs - FINISHED_RESERVATION_KEEP_MS
    );
    // Most sweeps find nothing: no write transaction, no lock on the shared journal.
    if (doomed.length === 0 && dropped.length === 0 && forgotten.length === 0) {
      // A pizza stops being sold SALE_MARGIN_MS before it expires, with nothing
      // written: the kiosks hear of it from here.
      if (JSON.stringify(availableCounts(nowMs)) !== announcedAvailable) stockChanged();
      const deadlines = [
        ...items.map((i) => i.expiresAt),
        ...items.map((i) => i.expiresAt - SALE_MARGIN_MS).filter((t) => t > nowMs),
        ...reservations.map((r) =>
          r.status === "RESERVED"
            ? r.reservedAt + reservationTtlMs + 1
            : r.updatedAt + FINISHED_RESERVATION_KEEP_MS + 1
        ),
      ];
      quiet = { version: store.version, untilMs: Math.min(...deadlines) };
      return;
    }
    const entries: FoodSafetyEntry[] = [];
    transaction(db, () => {
      for (const { item, reason } of doomed) {
        const aboveLimitMs = item.aboveLimitMs + pendingAboveLimitMs(item, lastSample, nowMs);
        for (let n = 0; n < item.quantity; n++) {
          const entry: FoodSafetyEntry = {
            logId: random.uuid(),
            atMs: nowMs,
            itemId: item.itemId,
            pizzaId: item.pizzaId,
            storageSlot: item.storageSlot,
            reason,
            aboveLimitMs: Math.round(aboveLimitMs),
            storageTempC: lastSample?.tempC ?? null,
            expiresAt: item.expiresAt,
          };
          store.logFoodSafety(entry);
          entries.push(entry);
        }
        store.setQuantity(item.itemId, 0);
      }
      for (const r of [...dropped, ...forgotten]) store.deleteReservation(r.orderId);
      store.pruneEmptyItems();
    });
    for (const e of entries) {
      bus.publish(discarded, {
        itemId: e.itemId,
        pizzaId: e.pizzaId,
        storageSlot: e.storageSlot,
        reason: e.reason,
        aboveLimitMs: e.aboveLimitMs,
        storageTempC: e.storageTempC ?? lastGoodTempC ?? 0,
      });
    }
    if (entries.length > 0) {
      const summary = [
        ...new Set(entries.map((e) => `${e.pizzaId} slot ${e.storageSlot} (${e.reason})`)),
      ]
        .join(", ");
      raiseAlert("FOOD_SAFETY", "WARNING", `${entries.length} pizza(s) discarded: ${summary}`);
      log.log("warn", "pizzas discarded", { count: entries.length, summary });
    }
    for (const r of dropped) {
      log.log("warn", "stale reservation dropped", { orderId: r.orderId, pizzaId: r.pizzaId });
    }
    if (entries.length > 0 || dropped.length > 0) stockChanged();
  };

  /**
   * A pizza that left storage for an order that will not get it (the order
   * failed, or its retrieval was cut short) goes into the food-safety log as
   * FAILED_ORDER, so that stock = start − sold − discarded + restocked holds.
   */
  const writeOff = (r: Reservation, nowMs: number): FoodSafetyEntry | null => {
    if (r.itemId === null || r.storageSlot === null || r.expiresAt === null) return null;
    const item = store.item(r.itemId);
    const entry: FoodSafetyEntry = {
      logId: random.uuid(),
      atMs: nowMs,
      itemId: r.itemId,
      pizzaId: r.pizzaId,
      storageSlot: r.storageSlot,
      reason: "FAILED_ORDER",
      aboveLimitMs: Math.round(item?.aboveLimitMs ?? 0),
      storageTempC: lastSample?.tempC ?? null,
      expiresAt: r.expiresAt,
    };
    store.logFoodSafety(entry);
    return entry;
  };
  const announceWriteOff = (e: FoodSafetyEntry | null, orderId: string): void => {
    if (!e) return;
    bus.publish(discarded, {
      itemId: e.itemId,
      pizzaId: e.pizzaId,
      storageSlot: e.storageSlot,
      reason: e.reason,
      aboveLimitMs: e.aboveLimitMs,
      storageTempC: e.storageTempC ?? lastGoodTempC ?? 0,
    }, orderId);
    log.log("warn", "pizza of a failed order discarded", {
      orderId,
      pizzaId: e.pizzaId,
      slot: e.storageSlot,
    });
  };

  const recordSample = (sample: TempSample): void => {
    const prev = lastSample;
    if (prev && sample.atMs <= prev.atMs) return;
    const warmNowOrBefore = isAboveLimit(sample.tempC) ||
      (prev !== null && isAboveLimit(prev.tempC));
    const persist = warmNowOrBefore ||
      sample.atMs - lastSamplePersistedMs >= SAMPLE_PERSIST_EVERY_MS;
    lastSample = sample;
    if (sample.tempC !== null) lastGoodTempC = sample.tempC;
    // Warm readings are all journalled; cold ones often enough to bound a restart's gap.
    if (persist) {
      transaction(db, () => {
        if (prev && intervalAboveLimit(prev, sample)) store.addAboveLimit(prev.atMs, sample.atMs);
        store.setState("lastSample", sample);
        store.setState("lastGoodTempC", lastGoodTempC);
      });
      lastSamplePersistedMs = sample.atMs;
    }
    sweep(sample.atMs);
  };

  // ---- The machine ----

  let temperatureAlert: AlertPayload | null = null;
  let salesAlert: AlertPayload | null = null;
  const salesState = store.getState<{ stopped: boolean; reason: string | null; serviced: boolean }>(
    "sales",
    { stopped: false, reason: null, serviced: false },
  );

  const markReservation = (job: RetrievalJob, patch: Partial<Reservation>): void => {
    const r = store.reservation(job.orderId);
    if (r) store.putReservation({ ...r, ...patch, updatedAt: clock.now() });
  };

  let stopped = false;
  let errored = false;

  const machine = carouselMachine.provide({
    actors: {
      temperatureSampler: fromCallback<CarouselEvent>(({ sendBack }) => {
        let reading = false;
        let done = false;
        let told: { tempC: number; salesStopped: boolean; atMs: number } | null = null;
        const deliver = (tempC: number | null) => {
          if (done) return;
          const atMs = clock.now();
          sendBack({ type: "SAMPLE", atMs, tempC });
          if (tempC === null || done) return;
          // Telemetry, not the food-safety record: a steady reading is repeated
          // only every TEMPERATURE_KEEPALIVE_MS.
          const salesStopped = actor.getSnapshot().hasTag("salesStopped");
          if (
            told && told.tempC === tempC && told.salesStopped === salesStopped &&
            atMs - told.atMs < TEMPERATURE_KEEPALIVE_MS
          ) return;
          told = { tempC, salesStopped, atMs };
          bus.publish(temperature, { storageTempC: tempC, salesStopped });
        };
        const tick = () => {
          // A read still outstanding after a whole period counts as unreadable.
          if (reading) return deliver(null);
          reading = true;
          driver.storageTempC().then(
            (tempC) => {
              reading = false;
              deliver(Number.isFinite(tempC) ? tempC : null);
            },
            (err: unknown) => {
              reading = false;
              log.log("warn", "storage probe read failed", { err: String(err) });
              deliver(null);
            },
          );
        };
        tick();
        const cancel = every(clock, sampleEveryMs, tick);
        return () => {
          done = true;
          cancel();
        };
      }),
      rotate: fromPromise<void, { slot: number }>(({ input, signal }) =>
        driver.rotateTo(input.slot, signal)
      ),
      eject: fromPromise<void, { slot: number }>(({ signal }) => driver.eject(signal)),
    },
    actions: {
      recordSample: (_, sample) => recordSample(sample),
      persistHighSince: (_, { highSinceMs }) => store.setState("highSinceMs", highSinceMs),
      raiseTemperatureAlert: (_, { tempC }) => {
        temperatureAlert = raiseAlert(
          "TEMPERATURE_ISSUE",
          "WARNING",
          tempC === null
            ? "Storage temperature unreadable"
            : `Storage at ${tempC.toFixed(1)} °C, above ${COLD_LIMIT_C} °C`,
        );
      },
      resolveTemperatureAlert: () => {
        resolveAlert(temperatureAlert);
        temperatureAlert = null;
      },
      announceSalesStopped: (_, { reason }) => {
        store.setState("sales", { stopped: true, reason, serviced: false });
        bus.publish(sales, { stopped: true, reason });
        salesAlert = raiseAlert("FOOD_SAFETY", "CRITICAL", `Sales stopped: ${reason}`);
        log.log("error", "sales stopped", { reason });
      },
      persistServiced: ({ context }) => {
        store.setState("sales", { stopped: true, reason: context.stopReason, serviced: true });
        log.log("info", "storage serviced; sales resume once it holds 5 °C", {});
      },
      announceSalesResumed: () => {
        store.setState("sales", { stopped: false, reason: null, serviced: false });
        bus.publish(sales, { stopped: false, reason: null });
        resolveAlert(salesAlert);
        salesAlert = null;
        log.log("info", "sales resumed", {});
      },
      completeRetrieval: (_, { job }) => {
        const r = store.reservation(job.orderId);
        let lost: FoodSafetyEntry | null = null;
        if (r?.error === RELEASED_AT_HATCH) {
          // Its order was refunded while the pizza was on its way out: lost to sale.
          lost = transaction(db, () => {
            markReservation(job, { status: "FAILED" });
            return writeOff(r, clock.now());
          });
        } else markReservation(job, { status: "DONE" });
        bus.publish(retrieved, {
          orderId: job.orderId,
          itemId: job.itemId,
          pizzaId: job.pizzaId,
          storageSlot: job.storageSlot,
        }, job.orderId);
        log.log("info", "pizza retrieved", { orderId: job.orderId, slot: job.storageSlot });
        // Announced after `retrieved`: the pizza left its slot first, then was written off.
        announceWriteOff(lost, job.orderId);
      },
      failRetrieval: (_, { job, message }) => {
        // The pizza's whereabouts are unknown now: it stays written off, never resold.
        const r = store.reservation(job.orderId);
        const entry = transaction(db, () => {
          markReservation(job, {
            status: "FAILED",
            error: `Retrieval for order "${job.orderId}" failed: ${message}`,
          });
          return r && r.status === "RETRIEVING" ? writeOff(r, clock.now()) : null;
        });
        announceWriteOff(entry, job.orderId);
        raiseAlert(
          "EQUIPMENT_FAILURE",
          "CRITICAL",
          `Carousel fault at slot ${job.storageSlot}: ${message}; service required`,
          job.orderId,
        );
      },
    },
  });

  const actor = createActor(machine, {
    clock,
    input: {
      salesStopped: salesState.stopped,
      stopReason: salesState.reason,
      serviced: salesState.serviced,
      graceUntilMs: store.getState("graceUntilMs", 0),
      highSinceMs: store.getState<number | null>("highSinceMs", null),
      lastTempC: lastGoodTempC,
      rotateTimeoutMs: options.rotateTimeoutMs ?? 30_000,
      ejectTimeoutMs: options.ejectTimeoutMs ?? 20_000,
    },
  });
  actor.subscribe({
    error: (err) => {
      errored = true;
      log.log("error", "carousel machine failed", { err: String(err) });
    },
  });

  const jobOf = (r: Reservation): RetrievalJob => ({
    orderId: r.orderId,
    itemId: r.itemId!,
    pizzaId: r.pizzaId,
    storageSlot: r.storageSlot!,
    expiresAt: r.expiresAt!,
  });
  const retrieveReply = (r: Reservation, status: "RUNNING" | "DONE") =>
    ok({
      status,
      itemId: r.itemId!,
      pizzaId: r.pizzaId,
      storageSlot: r.storageSlot!,
      expiresAt: r.expiresAt!,
    });
  const queuedIndex = (orderId: string) =>
    actor.getSnapshot().context.queue.findIndex((j) => j.orderId === orderId);
  const atHatch = (orderId: string) => {
    const snap = actor.getSnapshot();
    return snap.matches({ mechanism: "retrieving" }) && snap.context.queue[0]?.orderId === orderId;
  };
  const faultRefusal = <T>(): Result<T> =>
    fail(
      "FAULT",
      `The carousel mechanism is faulted (${actor.getSnapshot().context.fault}); a technician must service it`,
    );

  // ---- Commands ----

  const unsubscribes = [
    bus.serve(inventory, () => {
      const nowMs = clock.now();
      sweep(nowMs);
      return ok(snapshotInventory(nowMs));
    }),

    bus.serve(restock, (req) => {
      const nowMs = clock.now();
      const key = req.idempotencyKey;
      const fingerprint = requestFingerprint("restock", {
        items: req.items,
        performedBy: req.performedBy,
      });
      if (key !== undefined) {
        const known = store.restockFingerprint(key);
        if (known !== null && known !== fingerprint) return keyReused(key);
        if (known !== null) {
          log.log("info", "restock already done", { by: req.performedBy, key });
          return ok(snapshotInventory(nowMs));
        }
      }
      const checked = checkRestock(req.items, occupancy(), {
        menuPizzaIds,
        storageSlots: config.storageSlots,
        slotCapacity,
        nowMs,
      });
      if (!checked.ok) return fail(checked.error.code, checked.error.message);
      const graceUntilMs = nowMs + RESTOCK_GRACE_MS;
      transaction(db, () => {
        insertLines(req.items, nowMs);
        store.logMaintenance({
          logId: random.uuid(),
          atMs: nowMs,
          type: "RESTOCKING",
          performedBy: req.performedBy,
          description: describeLines(req.items),
        });
        store.setState("stocked", true);
        store.setState("graceUntilMs", graceUntilMs);
        if (key !== undefined) {
          store.rememberRestock(key, fingerprint, nowMs, nowMs - keyRetentionMs);
        }
      });
      actor.send({ type: "RESTOCKED", graceUntilMs });
      log.log("info", "restocked", { by: req.performedBy, lines: req.items.length });
      stockChanged();
      return ok(snapshotInventory(nowMs));
    }),

    bus.serve(service, (req) => {
      const nowMs = clock.now();
      store.logMaintenance({
        logId: random.uuid(),
        atMs: nowMs,
        type: "REPAIR",
        performedBy: req.performedBy,
        description: req.note,
      });
      actor.send({ type: "SERVICE" });
      log.log("info", "serviced", { by: req.performedBy });
      return ok(snapshotInventory(nowMs));
    }),

    bus.serve(reserve, (req) => {
      const nowMs = clock.now();
      const existing = store.reservation(req.orderId);
      if (existing) {
        if (existing.pizzaId !== req.pizzaId) {
          return fail(
            "CONFLICT",
            `Order "${req.orderId}" already holds a reservation for "${existing.pizzaId}", not "${req.pizzaId}"`,
          );
        }
        return ok({ pizzaId: req.pizzaId, available: availableCounts(nowMs)[req.pizzaId] ?? 0 });
      }
      const snap = actor.getSnapshot();
      if (snap.hasTag("salesStopped")) {
        return fail(
          "CONFLICT",
          `Sales are stopped: ${snap.context.stopReason}; they resume once a technician has serviced storage and it holds ${COLD_LIMIT_C} °C or below`,
        );
      }
      if (snap.hasTag("fault")) {
        return fail(
          "CONFLICT",
          `The carousel mechanism is faulted (${snap.context.fault}); a technician must service it`,
        );
      }
      sweep(nowMs);
      const available = availableCounts(nowMs)[req.pizzaId] ?? 0;
      if (available < 1) return fail("CONFLICT", `"${req.pizzaId}" is sold out`);
      store.putReservation({
        orderId: req.orderId,
        pizzaId: req.pizzaId,
        status: "RESERVED",
        reservedAt: nowMs,
        updatedAt: nowMs,
        itemId: null,
        storageSlot: null,
        expiresAt: null,
        error: null,
      });
      stockChanged();
      return ok({ pizzaId: req.pizzaId, available: available - 1 });
    }),

    bus.serve(release, (req) => {
      const r = store.reservation(req.orderId);
      if (r?.status === "DONE") {
        // The pizza left storage and its order is being refunded: it is lost to
        // sale. FAILED keeps a repeated release from logging it twice.
        const entry = transaction(db, () => {
          store.putReservation({
            ...r,
            status: "FAILED",
            updatedAt: clock.now(),
            error: `Order "${r.orderId}" was refunded after its pizza left storage`,
          });
          return writeOff(r, clock.now());
        });
        announceWriteOff(entry, r.orderId);
        stockChanged();
        return ok({ released: false });
      }
      if (!r || r.status === "FAILED") return ok({ released: false });
      if (r.status === "RETRIEVING") {
        if (atHatch(r.orderId)) {
          // The pizza is leaving its slot and cannot go back; the order's refund must go on.
          log.log("warn", "release during retrieval: pizza already on its way", {
            orderId: r.orderId,
            slot: r.storageSlot,
          });
          // Marked, so that the pizza is written off once it is out (or the retrieval fails).
          store.putReservation({ ...r, error: RELEASED_AT_HATCH, updatedAt: clock.now() });
          return ok({ released: false });
        }
        const queued = queuedIndex(r.orderId) >= 0;
        const entry = transaction(db, () => {
          const item = r.itemId ? store.item(r.itemId) : undefined;
          // Only a retrieval that never started here surely left its pizza in the slot;
          // one cut short by a restart may have ejected it, so it stays written off.
          if (queued && item) store.setQuantity(item.itemId, item.quantity + 1);
          store.deleteReservation(r.orderId);
          return queued ? null : writeOff(r, clock.now());
        });
        if (queued) actor.send({ type: "CANCEL", orderId: r.orderId });
        else {
          log.log("warn", "interrupted retrieval written off", { orderId: r.orderId });
          announceWriteOff(entry, r.orderId);
        }
      } else {
        store.deleteReservation(r.orderId);
      }
      stockChanged();
      return ok({ released: true });
    }),

    bus.serve(retrieve, (req) => {
      const nowMs = clock.now();
      const r = store.reservation(req.orderId);
      if (!r) return fail("NOT_FOUND", `Order "${req.orderId}" holds no reservation`);
      switch (r.status) {
        case "DONE":
          return retrieveReply(r, "DONE");
        case "FAILED":
          return fail("FAULT", r.error ?? `Retrieval for order "${r.orderId}" failed`);
        case "RETRIEVING":
          // Cut short by a restart: carry on with the same pizza.
          if (queuedIndex(r.orderId) < 0) actor.send({ type: "ENQUEUE", job: jobOf(r) });
          return retrieveReply(r, "RUNNING");
      }
      if (actor.getSnapshot().hasTag("fault")) return faultRefusal();
      sweep(nowMs);
      const pick = store.items().find((i) => i.pizzaId === r.pizzaId && isSellable(i, nowMs));
      if (!pick) {
        return fail("CONFLICT", `No sellable "${r.pizzaId}" is left for order "${r.orderId}"`);
      }
      const taken: Reservation = {
        ...r,
        status: "RETRIEVING",
        updatedAt: nowMs,
        itemId: pick.itemId,
        storageSlot: pick.storageSlot,
        expiresAt: pick.expiresAt,
      };
      // Journalled before the hardware moves.
      transaction(db, () => {
        store.setQuantity(pick.itemId, pick.quantity - 1);
        store.putReservation(taken);
      });
      actor.send({ type: "ENQUEUE", job: jobOf(taken) });
      log.log("info", "retrieval started", { orderId: r.orderId, slot: pick.storageSlot });
      stockChanged();
      return retrieveReply(taken, "RUNNING");
    }),
  ];

  // A release that came while its pizza was at the hatch waits for the ejection
  // to end; a restart ended it first: the pizza is written off, as any retrieval
  // a restart cut short (its order was refunded already).
  for (const r of store.reservations()) {
    if (r.status !== "RETRIEVING" || r.error !== RELEASED_AT_HATCH) continue;
    const entry = transaction(db, () => {
      store.deleteReservation(r.orderId);
      return writeOff(r, clock.now());
    });
    announceWriteOff(entry, r.orderId);
  }

  actor.start();
  lowStockBaseline = availableCounts(clock.now());
  announcedAvailable = JSON.stringify(lowStockBaseline);

  return {
    state: () => stateString(actor.getSnapshot().value),
    alive: () => !stopped && !errored && actor.getSnapshot().status === "active",
    stop: () => {
      if (stopped) return Promise.resolve();
      stopped = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      // Stopping the machine aborts a rotation or ejection under way: the motor stops.
      actor.stop();
      return Promise.resolve();
    },
  };
}
