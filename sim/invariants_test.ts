/** Each invariant catches what it is for, on hand-made situations. */
import assert from "node:assert/strict";
import { createVirtualClock } from "./virtual_clock.ts";
import { openJournal } from "../journal/journal.ts";
import { SimPlant } from "../hardware/sim/plant.ts";
import { createSimArm } from "../hardware/sim/arm.ts";
import { createSimPayment } from "../hardware/sim/payment.ts";
import { OrderStore } from "../actors/order/order_store.ts";
import { CarouselStore } from "../actors/carousel/store.ts";
import { PaymentStore } from "../actors/payment/store.ts";
import { defaultConfig } from "../controller/default_config.ts";
import type { Order } from "../protocol/entities.ts";
import { type FinalState, InvariantChecker } from "./invariants.ts";
import { type CustomerRecord, newCustomerRecord } from "./world/customers.ts";
import { Observer } from "./world/observer.ts";
import { PhysicalStock } from "./world/physical_stock.ts";

const t0 = Date.UTC(2025, 2, 3, 12);
const pizza = defaultConfig.menu[0]!;

function rig(mode: "safety" | "liveness" = "liveness") {
  const clock = createVirtualClock(t0);
  const plant = new SimPlant(clock);
  const arm = createSimArm(plant);
  const payment = createSimPayment(plant);
  const journal = openJournal(":memory:");
  const orders = new OrderStore(journal);
  const carousel = new CarouselStore(journal);
  new PaymentStore(journal, () => clock.now());
  const observer = new Observer();
  const physical = new PhysicalStock();
  const deferred: Array<() => void> = [];
  const checker = new InvariantChecker({
    mode,
    config: defaultConfig,
    plant,
    arm,
    ledger: payment.ledger,
    journal,
    observer,
    physical,
    startStock: 0,
    now: () => clock.now(),
    defer: (fn) => deferred.push(fn),
  });
  const event = (key: string, msg: Record<string, unknown>) => {
    observer.onEvent(clock.now(), key, msg);
    checker.onEvent(clock.now(), key, msg);
  };
  const order = (orderId: string, status: Order["status"]): Order => ({
    orderId,
    machineId: "m",
    pizzaId: pizza.pizzaId,
    status,
    totalAmountCents: pizza.priceCents,
    placedAt: t0,
    readyAt: null,
    dispensedAt: null,
    pickupCode: "1234",
  });
  const end: FinalState = {
    customers: [],
    restocked: 0,
    removedByStaff: new Set(),
    drained: true,
    openAtEnd: "",
    machineStatus: "OPERATIONAL",
    probe: "skipped",
  };
  const close = () => {
    arm.dispose();
    payment.close();
    journal.close();
  };
  return {
    clock,
    plant,
    arm,
    journal,
    orders,
    carousel,
    checker,
    event,
    order,
    end,
    deferred,
    close,
    physical,
  };
}

const names = (c: InvariantChecker) => c.violations.map((v) => v.invariant);

/** A customer whose order request (under `orderKey`) made `orderId`, or was refused. */
function customer(id: number, orderId: string | null, orderRefused = false): CustomerRecord {
  return {
    ...newCustomerRecord(id, t0),
    pizzaId: pizza.pizzaId,
    method: "card",
    orderId,
    orderKey: `kiosk-${id}`,
    orderRefused,
  };
}

Deno.test("invariant arm-safe: no motion with the pickup door open or safety tripped", async () => {
  const r = rig();
  try {
    r.plant.set("pickupDoorOpen", true);
    const move = r.arm.driver.moveTo("OVEN").catch(() => {});
    r.checker.onArmMove("OVEN");
    assert.deepEqual(names(r.checker), ["arm-safe"]);
    assert.match(r.checker.violations[0]!.message, /pickup door is open/);
    r.arm.driver.stop();
    await move;
  } finally {
    r.close();
  }
});

Deno.test("invariant arm-safe: an e-stop that does not stop the arm is caught", async () => {
  const r = rig();
  try {
    const move = r.arm.driver.moveTo("OVEN").catch(() => {});
    r.plant.set("estop", true);
    for (const f of r.deferred.splice(0)) f();
    assert.deepEqual(names(r.checker), ["arm-safe"]);
    r.arm.driver.stop();
    await move;
  } finally {
    r.close();
  }
});

Deno.test("invariant oven-limit: the real oven above 300 °C, even between two seconds", () => {
  const r = rig();
  try {
    r.checker.onOvenStep(t0, 250);
    assert.deepEqual(names(r.checker), []);
    // One 100 ms model step above the limit, between two kept samples.
    r.checker.onOvenStep(t0 + 100, 301.5);
    r.checker.onOvenStep(t0 + 200, 299);
    assert.deepEqual(names(r.checker), ["oven-limit"]);
    assert.equal(r.checker.maxOvenTempC, 301.5);
    assert.deepEqual(r.checker.ovenSamples(), { t: [t0], c: [250] });
  } finally {
    r.close();
  }
});

Deno.test("invariants on order events: ended orders never change, served means cooked", () => {
  const r = rig();
  try {
    const id = "00000000-0000-4000-8000-000000000001";
    r.event("order.updated", { order: r.order(id, "READY") });
    // Served without a cooking session nor a pizza out of storage.
    assert.deepEqual(names(r.checker).sort(), ["cooked-enough", "not-expired"]);
    r.event("order.updated", { order: r.order(id, "DISPENSED") });
    r.event("order.updated", { order: r.order(id, "REFUNDED") });
    assert.ok(names(r.checker).includes("no-refund-after-dispense"), names(r.checker).join());
  } finally {
    r.close();
  }
});

Deno.test("invariant cooked-enough: a session the real oven never held at temperature", () => {
  const r = rig();
  try {
    const id = "00000000-0000-4000-8000-000000000002";
    for (let t = 0; t <= 3000; t++) r.checker.onOvenStep(t0 + t * 100, 180);
    r.event("arm.moved", { orderId: id, position: "OVEN" });
    r.event("oven.cooked", {
      orderId: id,
      session: {
        sessionId: "s",
        orderId: id,
        machineId: "m",
        startTemperatureC: 180,
        targetTemperatureC: pizza.cookingTempC,
        currentTemperatureC: 180,
        estimatedCompletion: t0 + 250_000,
        timeRemainingMs: 0,
        status: "COMPLETE",
        startedAt: t0 + 1000,
        completedAt: t0 + 250_000,
      },
    });
    r.event("order.updated", { order: r.order(id, "READY") });
    const baked = r.checker.violations.find((v) => v.invariant === "cooked-enough");
    assert.match(baked?.message ?? "", /spent 0 s within 10 °C/);
  } finally {
    r.close();
  }
});

Deno.test("end checks: open orders in liveness, stock balance, the probe", () => {
  const r = rig();
  try {
    const id = "00000000-0000-4000-8000-000000000003";
    r.orders.save({
      order: r.order(id, "PAID"),
      pizza,
      stage: "queued",
      wrongCodes: 0,
      locked: false,
      paidAt: t0,
      payment: null,
    }, t0);
    r.carousel.insertItem({
      itemId: "i1",
      pizzaId: pizza.pizzaId,
      storageSlot: 0,
      quantity: 2,
      expiresAt: t0 + 3_600_000,
      addedAt: t0,
      aboveLimitMs: 0,
    });
    r.physical.load(pizza.pizzaId, 0, 1, t0 + 3_600_000);
    const v = r.checker.finish({ ...r.end, machineStatus: "ERROR" });
    const got = new Set(v.map((x) => x.invariant));
    assert.ok(got.has("every-order-ends"), [...got].join());
    assert.ok(got.has("stock-balance"), [...got].join());
    assert.ok(got.has("back-in-service"), [...got].join());
    assert.ok(v.some((x) => /2 pizza\(s\) in slot 0, but 1 are there/.test(x.message)));
  } finally {
    r.close();
  }
});

Deno.test("end checks in safety mode leave open orders alone", () => {
  const r = rig("safety");
  try {
    const id = "00000000-0000-4000-8000-000000000004";
    r.orders.save({
      order: r.order(id, "PREPARING"),
      pizza,
      stage: "preparing",
      wrongCodes: 0,
      locked: false,
      paidAt: t0,
      payment: null,
    }, t0);
    assert.deepEqual(
      r.checker.finish({
        ...r.end,
        customers: [customer(1, id)],
        drained: false,
        machineStatus: null,
      }),
      [],
    );
  } finally {
    r.close();
  }
});

Deno.test("invariant one-order-per-request: an order request made twice is caught", () => {
  const r = rig("safety");
  try {
    const save = (id: string) =>
      r.orders.save({
        order: r.order(id, "CANCELLED"),
        pizza,
        stage: "done",
        wrongCodes: 0,
        locked: false,
        paidAt: null,
        payment: null,
      }, t0);
    const told = "00000000-0000-4000-8000-000000000005";
    const twice = "00000000-0000-4000-8000-000000000006";
    save(told);
    const fine = { ...r.end, customers: [customer(1, told), customer(2, null, true)] };
    assert.deepEqual(r.checker.finish(fine), []);
    // The kiosk resent customer 1's request and the machine made a second order;
    // customer 2's refusal made none, so it cannot cover for it.
    save(twice);
    const v = r.checker.finish(fine);
    assert.deepEqual(v.map((x) => x.invariant), ["one-order-per-request"]);
    assert.match(
      v[0]!.message,
      new RegExp(`2 orders in the journal from 1 order requests.*${twice}`),
    );
  } finally {
    r.close();
  }
});

Deno.test("invariant pickup-works: a refused code is excused only when the world kept the customer away", async (t) => {
  const id = "00000000-0000-4000-8000-000000000007";
  /** A rig whose order was refunded uncollected after the customer's code was refused, then accepted. */
  const uncollected = () => {
    const r = rig();
    r.orders.save({
      order: { ...r.order(id, "REFUNDED"), reason: "pizza not collected within 30 minutes" },
      pizza,
      stage: "done",
      wrongCodes: 0,
      locked: false,
      paidAt: t0,
      payment: null,
    }, t0);
    const c: CustomerRecord = {
      ...customer(1, id),
      refusedAtMs: t0 + 60_000,
      codeAcceptedAtMs: t0 + 80_000,
      leftAtMs: t0 + 380_000,
    };
    return { r, end: { ...r.end, customers: [c] } };
  };
  /** Plays `changes` (offsets from t0) on the plant, then returns pickup-works violations. */
  const pickupViolations = async (
    changes: [number, "customerAbsent" | "pickupDoorOpen", boolean][],
  ) => {
    const { r, end } = uncollected();
    try {
      for (const [atMs, signal, value] of changes) {
        await r.clock.runUntil(t0 + atMs);
        r.plant.set(signal, value);
      }
      await r.clock.runUntil(t0 + 400_000);
      return r.checker.finish(end).filter((v) => v.invariant === "pickup-works");
    } finally {
      r.close();
    }
  };
  // The code is accepted at 80 s; the door is open from 81 s to 142 s.
  const doorOpen: [number, "pickupDoorOpen", boolean][] = [
    [81_000, "pickupDoorOpen", true],
    [142_000, "pickupDoorOpen", false],
  ];

  await t.step("a present customer who never got the pizza is a violation", async () => {
    const v = await pickupViolations([
      [0, "customerAbsent", true],
      [30_000, "customerAbsent", false],
      ...doorOpen,
    ]);
    assert.equal(v.length, 1);
  });
  await t.step("kept away only after the door closed: still the machine's doing", async () => {
    const v = await pickupViolations([
      ...doorOpen,
      [200_000, "customerAbsent", true],
      [260_000, "customerAbsent", false],
    ]);
    assert.equal(v.length, 1);
  });
  await t.step("kept away while the door was open to the code: the world's doing", async () => {
    const v = await pickupViolations([
      doorOpen[0]!,
      [100_000, "customerAbsent", true],
      doorOpen[1]!,
      [220_000, "customerAbsent", false],
    ]);
    assert.deepEqual(v, []);
  });
});
