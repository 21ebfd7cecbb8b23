import assert from "node:assert/strict";
import { inventory, reserve, restock, retrieve } from "../../protocol/carousel.ts";
import { daysFromNow, type Rig, startRig, until } from "./test_fixture.ts";
import {
  COLD_LIMIT_C,
  discardReason,
  intervalAboveLimit,
  MAX_ABOVE_LIMIT_MS,
  SALE_MARGIN_MS,
  salesLimitPassed,
} from "./food_safety.ts";

const order = () => crypto.randomUUID();
const MIN = 60_000;

function foodSafetyLog(rig: Rig): { reason: string; pizza_id: string }[] {
  return rig.journal.prepare("SELECT reason, pizza_id FROM food_safety_log ORDER BY at_ms")
    .all() as {
      reason: string;
      pizza_id: string;
    }[];
}

async function reserveRefusal(rig: Rig, pizzaId: string) {
  const r = await rig.call(reserve, { orderId: order(), pizzaId });
  return r.ok ? null : r.error;
}

Deno.test("food safety rules", async (t) => {
  await t.step("time between readings counts warm if either end was warm", () => {
    assert.equal(intervalAboveLimit(null, { atMs: 10, tempC: 9 }), false);
    assert.equal(intervalAboveLimit({ atMs: 0, tempC: 3 }, { atMs: 10, tempC: 4 }), false);
    assert.equal(intervalAboveLimit({ atMs: 0, tempC: 3 }, { atMs: 10, tempC: 6 }), true);
    assert.equal(intervalAboveLimit({ atMs: 0, tempC: null }, { atMs: 10, tempC: 3 }), true);
  });
  await t.step("expired and too-long-warm pizzas are discarded", () => {
    const item = { expiresAt: 1000, addedAt: 0, aboveLimitMs: 0 };
    assert.equal(discardReason(item, null, 999), null);
    assert.equal(discardReason(item, null, 1000), "EXPIRED");
    const warm = { expiresAt: 1e12, addedAt: 0, aboveLimitMs: MAX_ABOVE_LIMIT_MS - 10 };
    assert.equal(discardReason(warm, { atMs: 100, tempC: 4 }, 200), null);
    assert.equal(discardReason(warm, { atMs: 100, tempC: 7 }, 105), null);
    assert.equal(discardReason(warm, { atMs: 100, tempC: 7 }, 200), "TIME_TEMPERATURE");
  });
  await t.step("sales stop after the debounce, never inside the restock grace", () => {
    assert.equal(salesLimitPassed(0, 0, 2 * MIN), false);
    assert.equal(salesLimitPassed(0, 0, 2 * MIN + 1), true);
    assert.equal(salesLimitPassed(0, 30 * MIN, 29 * MIN), false);
    assert.equal(salesLimitPassed(0, 30 * MIN, 30 * MIN + 1), true);
    assert.equal(salesLimitPassed(40 * MIN, 30 * MIN, 41 * MIN), false);
  });
});

Deno.test("carousel food safety: expired pizzas are discarded and never sold", async (t) => {
  const rig = await startRig();
  try {
    const now = rig.tb.clock.now();
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [
        { pizzaId: "margherita", quantity: 2, storageSlot: 0, expiresAt: now + 10 * MIN },
        { pizzaId: "margherita", quantity: 1, storageSlot: 1, expiresAt: daysFromNow(rig, 2) },
        { pizzaId: "pepperoni", quantity: 1, storageSlot: 2, expiresAt: now + 10 * MIN },
      ],
    });
    const m = order();
    const p = order();
    await rig.must(reserve, { orderId: m, pizzaId: "margherita" });
    await rig.must(reserve, { orderId: p, pizzaId: "pepperoni" });

    await t.step("expiry discards with reason EXPIRED and a food-safety log row", async () => {
      await until("3 discarded events", () => rig.events.discarded.length === 3);
      assert.ok(rig.events.discarded.every((d) => d.reason === "EXPIRED"));
      assert.deepEqual(
        foodSafetyLog(rig).map((r) => `${r.pizza_id}:${r.reason}`).sort(),
        ["margherita:EXPIRED", "margherita:EXPIRED", "pepperoni:EXPIRED"],
      );
      assert.ok(rig.events.alerts.some((a) => a.type === "FOOD_SAFETY"));
      const inv = await rig.must(inventory, {});
      assert.deepEqual(inv.items.map((i) => i.storageSlot), [1]);
    });

    await t.step("an expired pizza is never reserved or retrieved", async () => {
      assert.match((await reserveRefusal(rig, "pepperoni"))?.message ?? "", /sold out/);
      const r = await rig.call(retrieve, { orderId: p });
      assert.equal(!r.ok && r.error.code, "CONFLICT");
      const got = await rig.must(retrieve, { orderId: m });
      assert.equal(got.storageSlot, 1);
    });
  } finally {
    await rig.close();
  }
});

Deno.test("carousel food safety: a pizza about to expire is neither offered nor picked", async () => {
  const rig = await startRig();
  try {
    const now = rig.tb.clock.now();
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [
        { pizzaId: "veggie", quantity: 1, storageSlot: 3, expiresAt: now + SALE_MARGIN_MS / 2 },
        { pizzaId: "veggie", quantity: 1, storageSlot: 4, expiresAt: daysFromNow(rig, 2) },
      ],
    });
    const o = order();
    await rig.must(reserve, { orderId: o, pizzaId: "veggie" });
    // It could expire on its way out of storage: it does not count as stock.
    assert.match((await reserveRefusal(rig, "veggie"))?.message ?? "", /sold out/);
    const got = await rig.must(retrieve, { orderId: o });
    assert.equal(got.storageSlot, 4);
  } finally {
    await rig.close();
  }
});

Deno.test("carousel food safety: a pizza reaching its sale margin is announced unsold", async () => {
  const rig = await startRig();
  try {
    const now = rig.tb.clock.now();
    const expiresAt = now + SALE_MARGIN_MS + 30_000;
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [{ pizzaId: "veggie", quantity: 1, storageSlot: 3, expiresAt }],
    });
    await until("restock announced", () => rig.events.available.at(-1)?.veggie === 1, 5_000);
    // Nothing is written when it stops being sold; the sweep still tells the kiosks.
    await until("margin announced", () => rig.events.available.at(-1)?.veggie === 0, 10_000);
    assert.ok(rig.tb.clock.now() >= expiresAt - SALE_MARGIN_MS);
    const inv = await rig.must(inventory, {});
    assert.deepEqual(inv.items.map((i) => i.quantity), [1]);
    assert.equal(inv.available.veggie, 0);
  } finally {
    await rig.close();
  }
});

Deno.test("carousel food safety: more than 120 min above 5 °C discards", async () => {
  const rig = await startRig({ speed: 2000 });
  try {
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [{
        pizzaId: "pepperoni",
        quantity: 2,
        storageSlot: 5,
        expiresAt: daysFromNow(rig, 5),
      }],
    });
    rig.plant.set("fridgeFailed", true);
    await until("TIME_TEMPERATURE discards", () => rig.events.discarded.length === 2, 30_000);
    for (const d of rig.events.discarded) {
      assert.equal(d.reason, "TIME_TEMPERATURE");
      assert.ok(d.aboveLimitMs > MAX_ABOVE_LIMIT_MS, `aboveLimitMs ${d.aboveLimitMs}`);
      assert.ok(d.storageTempC > COLD_LIMIT_C);
    }
    assert.deepEqual(foodSafetyLog(rig).map((r) => r.reason), [
      "TIME_TEMPERATURE",
      "TIME_TEMPERATURE",
    ]);
    assert.deepEqual((await rig.must(inventory, {})).items, []);
  } finally {
    await rig.close();
  }
});
