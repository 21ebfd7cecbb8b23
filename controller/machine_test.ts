/**
 * The whole machine through its HTTP API, on real NATS, with simulated
 * hardware at 1000× speed: the order lifecycle and its failure paths.
 */
import assert from "node:assert/strict";
import { startTestMachine, type TestMachine, testTechToken } from "../testing/machine.ts";
import { waitFor } from "../testing/nats.ts";
import { defaultConfig } from "./default_config.ts";
import { restart } from "../protocol/common.ts";

const M = "/api/v1/machine/{m}";

async function withMachine(
  fn: (m: TestMachine) => Promise<void>,
  options: Parameters<typeof startTestMachine>[0] = {},
) {
  const m = await startTestMachine(options);
  try {
    await fn(m);
  } finally {
    await m.dispose();
  }
}

async function order(m: TestMachine, pizzaId = "margherita") {
  const r = await m.http("POST", `${M}/order`, { pizzaId });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body as { orderId: string; pickupCode: string; totalAmountCents: number };
}

async function payCard(m: TestMachine, orderId: string, token = "tok_visa") {
  return await m.http("POST", `/api/v1/order/${orderId}/payment`, {
    method: "CARD",
    paymentDetails: { token },
  });
}

async function available(m: TestMachine, pizzaId: string): Promise<number> {
  const r = await m.http("GET", `${M}/inventory`, undefined, testTechToken);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.available as Record<string, number>)[pizzaId] ?? 0;
}

/** Waits until the oven bakes the order (session COOKING). */
async function waitCooking(m: TestMachine) {
  await waitFor("the oven to cook", async () => {
    const r = await m.http("GET", `${M}/cooking-status`, undefined, testTechToken);
    return r.body.status === "COOKING" ? true : undefined;
  }, 30_000);
}

Deno.test("machine: a card order from menu to DISPENSED, captured only after pickup", async () => {
  await withMachine(async (m) => {
    const menu = await m.http("GET", `${M}/menu`);
    assert.equal(menu.status, 200);
    const pizzas = menu.body.pizzas as Array<{ pizzaId: string; available: boolean }>;
    assert.ok(pizzas.find((p) => p.pizzaId === "margherita")?.available);
    const before = await available(m, "margherita");

    const o = await order(m);
    assert.equal(o.totalAmountCents, 750);
    assert.match(o.pickupCode, /^\d{4}$/);
    const paid = await payCard(m, o.orderId);
    assert.equal(paid.status, 200, JSON.stringify(paid.body));
    assert.equal(paid.body.status, "AUTHORIZED");

    await m.waitStatus(o.orderId, "READY", 40_000);
    assert.equal(m.payment!.ledger.captures(o.orderId).length, 0, "no capture before pickup");
    assert.equal(await available(m, "margherita"), before - 1, "stock decremented");

    const pickup = await m.http("POST", `/api/v1/order/${o.orderId}/pickup`, {
      pickupCode: o.pickupCode,
    });
    assert.equal(pickup.status, 200);
    assert.equal(pickup.body.success, true);
    const done = await m.waitStatus(o.orderId, "DISPENSED");
    assert.ok(done.dispensedAt);
    await waitFor(
      "capture",
      () => m.payment!.ledger.captures(o.orderId).length === 1 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(m.payment!.ledger.captures(o.orderId).length, 1, "exactly one capture");
    assert.equal(m.payment!.ledger.voids(o.orderId).length, 0);
  });
});

Deno.test("machine: payments that fail, retry and hang", async (t) => {
  await withMachine(async (m) => {
    await t.step("a declined card leaves the order payable", async () => {
      const o = await order(m);
      const declined = await payCard(m, o.orderId, "tok_chargeDeclined");
      assert.equal(declined.status, 200);
      assert.equal(declined.body.status, "FAILED");
      assert.equal((await m.waitStatus(o.orderId, "PENDING")).status, "PENDING");
      const again = await payCard(m, o.orderId, "tok_visa");
      assert.equal(again.body.status, "AUTHORIZED");
      await m.http(
        "POST",
        `${M}/cancel-order`,
        { orderId: o.orderId, reason: "test" },
        testTechToken,
      );
      await m.waitStatus(o.orderId, "REFUNDED");
    });
    await t.step("a gateway timeout is retried and then approved", async () => {
      const o = await order(m);
      const r = await payCard(m, o.orderId, "tok_timeout");
      assert.equal(r.body.status, "AUTHORIZED", JSON.stringify(r.body));
      await m.http("POST", `/api/v1/order/${o.orderId}/cancel`, { reason: "changed my mind" });
      await m.waitStatus(o.orderId, "REFUNDED");
    });
    await t.step(
      "a gateway that never answers leaves the order PAYMENT_PENDING with an alert",
      async () => {
        const o = await order(m);
        const r = await payCard(m, o.orderId, "tok_gatewayDown");
        assert.equal(r.body.status, "PENDING", JSON.stringify(r.body));
        await m.waitStatus(o.orderId, "PAYMENT_PENDING");
        const status = await m.http("GET", `${M}/status`, undefined, testTechToken);
        const alerts = JSON.stringify(status.body);
        assert.match(alerts, /PAYMENT_ISSUE/);
      },
    );
    await t.step("paying twice is a 409 that changes nothing", async () => {
      const o = await order(m);
      assert.equal((await payCard(m, o.orderId)).body.status, "AUTHORIZED");
      const twice = await payCard(m, o.orderId);
      assert.equal(twice.status, 409);
      assert.equal(m.payment!.ledger.authorizations(o.orderId).length, 1);
    });
  });
});

Deno.test("machine: cash $5 + $5 for a $7.50 pizza gives $2.50 change", async () => {
  await withMachine(async (m) => {
    const o = await order(m);
    const cash = (denominationCents: number) =>
      m.http("POST", `/api/v1/order/${o.orderId}/payment`, {
        method: "CASH",
        paymentDetails: { denominationCents },
      });
    const bad = await cash(300);
    assert.equal(bad.status, 400);
    const first = await cash(500);
    assert.equal(first.status, 200);
    assert.equal(first.body.status, "PENDING");
    assert.equal(first.body.insertedCents, 500);
    const second = await cash(500);
    assert.equal(second.body.status, "AUTHORIZED");
    assert.equal(second.body.changeCents, 250);
    await m.waitStatus(o.orderId, ["PAID", "PREPARING"]);
  });
});

Deno.test("machine: an oven fault mid-cook voids the card once and refunds the cash", async (t) => {
  await withMachine(async (m) => {
    await t.step("card", async () => {
      const o = await order(m);
      await payCard(m, o.orderId);
      await waitCooking(m);
      m.plant!.set("thermocoupleFailed", true);
      await m.waitStatus(o.orderId, "REFUNDED");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(m.payment!.ledger.voids(o.orderId).length, 1, "voided exactly once");
      assert.equal(m.payment!.ledger.captures(o.orderId).length, 0, "never captured");
      const status = await m.http("GET", `${M}/status`, undefined, testTechToken);
      assert.match(JSON.stringify(status.body), /EQUIPMENT_FAILURE|ORDER_ABORTED/);
    });
  });
  await withMachine(async (m) => {
    await t.step("cash", async () => {
      const o = await order(m);
      for (const d of [500, 500]) {
        await m.http("POST", `/api/v1/order/${o.orderId}/payment`, {
          method: "CASH",
          paymentDetails: { denominationCents: d },
        });
      }
      await waitCooking(m);
      m.plant!.set("thermocoupleFailed", true);
      const refunded = await m.waitStatus(o.orderId, "REFUNDED");
      assert.equal((refunded.payment as { status: string }).status, "VOIDED");
      const returns = m.payment!.ledger.payouts(o.orderId).filter((p) => p.why === "RETURN");
      assert.equal(returns.length, 1);
      assert.equal(returns[0]!.amountCents, 750);
    });
  });
});

Deno.test("machine: an oven restarted mid-bake is asked to cook again at once", async () => {
  // At 100x a clock minute is 0.6 s of wall time: room for the bus's latency.
  await withMachine(async (m) => {
    const o = await order(m);
    assert.equal((await payCard(m, o.orderId)).status, 200);
    await waitCooking(m);
    const cooks: number[] = [];
    const unsubscribe = m.bus.bus.subscribe(`fornax.${m.machineId}.oven.cmd.cook`, () => {
      cooks.push(m.clock.now());
    });
    try {
      // Right after the order's poll, its next one is a minute away.
      await waitFor("the order's poll of the bake", () => cooks.length > 0 || undefined, 10_000);
      cooks.length = 0;
      const restartedAt = m.clock.now();
      const restarted = await m.bus.request(restart.oven, {}, { timeoutMs: 5_000 });
      assert.ok(restarted.ok, JSON.stringify(restarted));
      // The new oven's first temperature event says it is not cooking: the order asks at once.
      await waitFor("a new cook request", () => cooks.length > 0 || undefined, 10_000);
      assert.ok(cooks[0]! - restartedAt < 20_000, `asked ${cooks[0]! - restartedAt} ms after`);
      await m.waitStatus(o.orderId, "READY", 60_000);
    } finally {
      unsubscribe();
    }
  }, { speed: 100 });
});

Deno.test("machine: e-stop mid-cook cuts the heater and halts the arm at once, and voids", async () => {
  await withMachine(async (m) => {
    const o = await order(m);
    await payCard(m, o.orderId);
    await waitCooking(m);
    m.plant!.set("estop", true);
    // The safety monitor reacts inside the input change itself: no tick passes.
    assert.equal(m.plant!.get("heaterPowerCut"), true);
    assert.equal(m.plant!.get("armHalt"), true);
    assert.equal(m.plant!.snapshot().heaterPct === 0 || m.plant!.get("heaterPowerCut"), true);
    await m.waitStatus(o.orderId, "REFUNDED");
    assert.equal(m.payment!.ledger.voids(o.orderId).length, 1);
    const again = await m.http("POST", `${M}/order`, { pizzaId: "margherita" });
    assert.equal(again.status, 409, "no orders while tripped");
    const reset = await m.http("POST", `${M}/safety/reset`, { performedBy: "tech" }, testTechToken);
    assert.equal(reset.status, 409, "reset refused while the e-stop is pressed");
  });
});

Deno.test("machine: sold out and expired stock are never sold", async (t) => {
  await withMachine(async (m) => {
    await t.step("the last pizza sells once, then 409", async () => {
      await order(m, "pepperoni");
      const r = await m.http("POST", `${M}/order`, { pizzaId: "pepperoni" });
      assert.equal(r.status, 409);
      assert.match(String((r.body.error as { message: string }).message), /not available/);
    });
    await t.step("a pizza that expires is discarded and never sold", async () => {
      const expiresAt = new Date(m.clock.now() + 10 * 60_000).toISOString();
      const restock = await m.http("POST", `${M}/restock`, {
        items: [{ pizzaId: "margherita", quantity: 1, storageSlot: 5, expirationDate: expiresAt }],
      }, testTechToken);
      assert.equal(restock.status, 200, JSON.stringify(restock.body));
      await waitFor("the margherita to expire", async () => {
        const menu = await m.http("GET", `${M}/menu`);
        const p = (menu.body.pizzas as Array<{ pizzaId: string; available: boolean }>)
          .find((x) => x.pizzaId === "margherita");
        return p && !p.available ? true : undefined;
      }, 30_000);
      const r = await m.http("POST", `${M}/order`, { pizzaId: "margherita" });
      assert.equal(r.status, 409);
      assert.equal(await available(m, "margherita"), 0);
    });
  }, {
    initialStock: [
      { pizzaId: "pepperoni", quantity: 1, storageSlot: 0, expiresAt: Date.now() + 5 * 86_400_000 },
    ],
  });
});

Deno.test("machine: five wrong codes lock pickup", async () => {
  await withMachine(async (m) => {
    const o = await order(m);
    await payCard(m, o.orderId);
    await m.waitStatus(o.orderId, "READY", 40_000);
    const wrong = o.pickupCode === "0000" ? "1111" : "0000";
    for (let i = 1; i <= 5; i++) {
      const r = await m.http("POST", `/api/v1/order/${o.orderId}/pickup`, { pickupCode: wrong });
      assert.equal(r.body.success, false);
      assert.equal(r.body.attemptsLeft, 5 - i);
    }
    const right = await m.http("POST", `/api/v1/order/${o.orderId}/pickup`, {
      pickupCode: o.pickupCode,
    });
    assert.equal(right.body.success, false, "locked even for the right code");
    const status = await m.http("GET", `/api/v1/order/${o.orderId}/status`);
    assert.equal(status.body.pickupLocked, true);
    assert.equal(status.body.status, "READY");
    const machine = await m.http("GET", `${M}/status`, undefined, testTechToken);
    assert.match(JSON.stringify(machine.body), /PICKUP_LOCKED/);
    const staff = await m.http("POST", `${M}/dispense`, { orderId: o.orderId }, testTechToken);
    assert.equal(staff.body.success, true);
    await m.waitStatus(o.orderId, "DISPENSED");
  });
});

Deno.test("machine: maintenance mode refuses new orders and lets in-flight ones finish", async () => {
  await withMachine(async (m) => {
    const o = await order(m);
    await payCard(m, o.orderId);
    const on = await m.http(
      "POST",
      `${M}/maintenance-mode`,
      { enable: true, reason: "cleaning" },
      testTechToken,
    );
    assert.equal(on.status, 200, JSON.stringify(on.body));
    await waitFor("maintenance to reach the order component", async () => {
      const r = await m.http("POST", `${M}/order`, { pizzaId: "veggie" });
      return r.status === 409 ? r : undefined;
    }).then((r) =>
      assert.match(String((r.body.error as { message: string }).message), /maintenance/)
    );
    await m.waitStatus(o.orderId, "READY", 40_000);
    await m.http("POST", `/api/v1/order/${o.orderId}/pickup`, { pickupCode: o.pickupCode });
    await m.waitStatus(o.orderId, "DISPENSED");
    await m.http("POST", `${M}/maintenance-mode`, { enable: false, reason: "done" }, testTechToken);
    await waitFor("orders again", async () => {
      const r = await m.http("POST", `${M}/order`, { pizzaId: "veggie" });
      return r.status === 201 ? true : undefined;
    });
  });
});

Deno.test("machine: the default config is valid", () => {
  assert.ok(defaultConfig.menu.length > 0);
});

Deno.test("machine: a FIFO queue with estimated waits, fetching the next pizza while one bakes", async () => {
  await withMachine(async (m) => {
    const { retrieved } = await import("../protocol/carousel.ts");
    const { progress, cooked } = await import("../protocol/oven.ts");
    const events: string[] = [];
    const stops = [
      m.bus.subscribe(retrieved, m.machineId, (e) => events.push(`retrieved:${e.orderId}`)),
      m.bus.subscribe(cooked, m.machineId, (e) => events.push(`cooked:${e.orderId}`)),
      m.bus.subscribe(progress, m.machineId, (e) => {
        if (e.status === "COOKING" && events.at(-1) !== `cooking:${e.orderId}`) {
          events.push(`cooking:${e.orderId}`);
        }
      }),
    ];
    try {
      const ids: string[] = [];
      for (const pizzaId of ["margherita", "pepperoni", "veggie"]) {
        const o = await order(m, pizzaId);
        assert.equal((await payCard(m, o.orderId)).body.status, "AUTHORIZED");
        ids.push(o.orderId);
      }
      const views = await Promise.all(
        ids.map(async (id) => (await m.http("GET", `/api/v1/order/${id}/status`)).body),
      );
      assert.deepEqual(views.map((v) => v.queuePosition), [1, 2, 3]);
      const etas = views.map((v) => Number(v.estimatedReadyTime));
      assert.ok(etas[0]! < etas[1]! && etas[1]! < etas[2]!, `ETAs ${etas}`);
      for (const id of ids) {
        const ready = await m.waitStatus(id, "READY", 60_000);
        await m.http("POST", `/api/v1/order/${id}/pickup`, { pickupCode: ready.pickupCode });
        await m.waitStatus(id, "DISPENSED");
      }
      // The second pizza came out of storage before the first was baked, and
      // the oven baked them one at a time, in order.
      const at = (e: string) => events.indexOf(e);
      assert.ok(at(`retrieved:${ids[1]}`) < at(`cooked:${ids[0]}`), events.join(" "));
      assert.ok(at(`cooked:${ids[0]}`) < at(`cooking:${ids[1]}`), events.join(" "));
      assert.ok(at(`cooked:${ids[1]}`) < at(`cooking:${ids[2]}`), events.join(" "));
    } finally {
      for (const s of stops) s();
    }
  });
});

Deno.test("machine: a config pushed by the cloud applies at once, atomically, and survives a restart", async () => {
  const { applyConfig } = await import("../protocol/sync.ts");
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-config-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  const v2 = {
    ...defaultConfig,
    version: "v2",
    menu: defaultConfig.menu.map((p) => p.pizzaId === "margherita" ? { ...p, priceCents: 800 } : p),
  };
  try {
    await withMachine(async (m) => {
      const bad = JSON.parse(new TextDecoder().decode(
        await m.bus.bus.request(
          applyConfig.subject(m.machineId),
          new TextEncoder().encode(JSON.stringify({
            id: "x",
            machineId: m.machineId,
            ts: 1,
            config: { ...v2, menu: [] },
          })),
          5000,
        ),
      ));
      assert.equal(bad.error.code, "BAD_REQUEST");
      assert.match(bad.error.message, /config\.menu/);
      const r = await m.bus.request(applyConfig, { config: v2 });
      assert.deepEqual(r, { ok: true, value: { version: "v2", applied: true } });
      const again = await m.bus.request(applyConfig, { config: v2 });
      assert.deepEqual(again, { ok: true, value: { version: "v2", applied: false } });
      const o = await order(m, "margherita");
      assert.equal(o.totalAmountCents, 800);
    }, { dataDir, machineId });
    await withMachine(async (m) => {
      const menu = await m.http("GET", `${M}/menu`);
      const p = (menu.body.pizzas as Array<{ pizzaId: string; priceCents: number }>)
        .find((x) => x.pizzaId === "margherita");
      assert.equal(p?.priceCents, 800);
    }, { dataDir, machineId });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
