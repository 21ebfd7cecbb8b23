import assert from "node:assert/strict";
import { inventory, reserve, restock, service } from "../../protocol/carousel.ts";
import { sleep } from "../../clock/clock.ts";
import { daysFromNow, type Rig, startRig, until } from "./test_fixture.ts";
import { COLD_LIMIT_C } from "./food_safety.ts";

const order = () => crypto.randomUUID();
const MIN = 60_000;

async function reserveRefusal(rig: Rig, pizzaId: string) {
  const r = await rig.call(reserve, { orderId: order(), pizzaId });
  return r.ok ? null : r.error;
}

/** Waits for a probe reading taken after now that satisfies `check`. */
function nextTemperature(rig: Rig, check: (tempC: number) => boolean, what: string) {
  const after = rig.tb.clock.now();
  return until(
    what,
    () => rig.events.temperatures.some((t) => t.ts > after && check(t.storageTempC)),
  );
}

Deno.test("carousel food safety: a failed fridge stops sales until service and cold", async (t) => {
  const rig = await startRig();
  try {
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [{ pizzaId: "veggie", quantity: 5, storageSlot: 3, expiresAt: daysFromNow(rig, 5) }],
    });
    // Let the restock grace pass with the fridge working.
    await sleep(rig.tb.clock, 31 * MIN);
    assert.equal(rig.events.sales.length, 0);

    await t.step("fridgeFailed: storage warms, sales stop, reserve is refused", async () => {
      rig.plant.set("fridgeFailed", true);
      await until("sales stopped", () => rig.events.sales.some((s) => s.stopped));
      const refusal = await reserveRefusal(rig, "veggie");
      assert.equal(refusal?.code, "CONFLICT");
      assert.match(refusal?.message ?? "", /Sales are stopped: storage at [\d.]+ °C/);
      assert.ok(rig.events.alerts.some((a) => a.type === "TEMPERATURE_ISSUE"));
      assert.ok(
        rig.events.alerts.some((a) => a.type === "FOOD_SAFETY" && a.severity === "CRITICAL"),
      );
      const inv = await rig.must(inventory, {});
      assert.equal(inv.salesStopped, true);
      assert.ok(inv.stopReason);
    });

    await t.step("a restarted controller keeps sales stopped", async () => {
      await rig.stopActor();
      rig.restartActor();
      assert.equal((await reserveRefusal(rig, "veggie"))?.code, "CONFLICT");
      assert.equal((await rig.must(inventory, {})).salesStopped, true);
    });

    await t.step("the fridge recovers: still stopped until a service", async () => {
      rig.plant.set("fridgeFailed", false);
      await nextTemperature(rig, (c) => c <= COLD_LIMIT_C, "storage cold again");
      await sleep(rig.tb.clock, MIN);
      assert.equal((await reserveRefusal(rig, "veggie"))?.code, "CONFLICT");
      assert.deepEqual(rig.events.sales.map((s) => s.stopped), [true]);
      await rig.must(service, { performedBy: "tech-2", note: "replaced compressor relay" });
      await until("sales resumed", () => rig.events.sales.length === 2);
      assert.deepEqual(rig.events.sales.at(-1), { stopped: false, reason: null });
      assert.equal((await rig.must(inventory, {})).salesStopped, false);
      assert.equal(await reserveRefusal(rig, "veggie"), null);
    });

    await t.step("a service while still warm waits for cold storage", async () => {
      rig.plant.set("fridgeFailed", true);
      await until("sales stopped again", () => rig.events.sales.length === 3);
      await rig.must(service, { performedBy: "tech-2", note: "fridge repaired" });
      assert.equal((await reserveRefusal(rig, "veggie"))?.code, "CONFLICT");
      rig.plant.set("fridgeFailed", false);
      await until("sales resumed by themselves once cold", () => rig.events.sales.length === 4);
      assert.equal(rig.events.sales.at(-1)?.stopped, false);
      assert.equal(await reserveRefusal(rig, "veggie"), null);
    });
  } finally {
    await rig.close();
  }
});

Deno.test("carousel food safety: restock grace for an open door", async (t) => {
  const rig = await startRig();
  try {
    const line = (slot: number) => ({
      pizzaId: "margherita",
      quantity: 2,
      storageSlot: slot,
      expiresAt: daysFromNow(rig, 5),
    });

    await t.step("door open 5 min right after a restock: sales go on", async () => {
      await rig.must(restock, { performedBy: "tech-1", items: [line(0)] });
      rig.plant.set("storageDoorOpen", true);
      await nextTemperature(rig, (c) => c > COLD_LIMIT_C, "storage warm");
      await sleep(rig.tb.clock, 5 * MIN);
      rig.plant.set("storageDoorOpen", false);
      await nextTemperature(rig, (c) => c <= COLD_LIMIT_C, "storage cold again");
      assert.deepEqual(rig.events.sales, []);
      assert.equal(await reserveRefusal(rig, "margherita"), null);
    });

    await t.step("door open past the 30-min grace: sales stop", async () => {
      // Read before asking: the carousel's own restock instant is no earlier.
      const restockedAt = rig.tb.clock.now();
      await rig.must(restock, { performedBy: "tech-1", items: [line(1)] });
      rig.plant.set("storageDoorOpen", true);
      await until("sales stopped", () => rig.events.sales.some((s) => s.stopped));
      const stoppedAt = rig.events.temperatures.find((t) => t.salesStopped)?.ts ?? Infinity;
      assert.ok(stoppedAt >= restockedAt + 30 * MIN, "not before the grace ran out");
      assert.match(rig.events.sales[0]?.reason ?? "", /restock grace/);
      assert.equal((await reserveRefusal(rig, "margherita"))?.code, "CONFLICT");
      rig.plant.set("storageDoorOpen", false);
    });
  } finally {
    await rig.close();
  }
});

Deno.test("carousel: storage temperature events come on a change, and every minute when steady", async () => {
  const rig = await startRig();
  try {
    // A steady fridge: readings every 10 s, events only as the keepalive.
    await until("a steady fridge", () => rig.events.temperatures.length > 0);
    const steadyFrom = rig.tb.clock.now();
    await sleep(rig.tb.clock, 5 * MIN);
    const steady = rig.events.temperatures.filter((t) => t.ts > steadyFrom);
    const readings = new Set(steady.map((t) => t.storageTempC));
    assert.ok(readings.size <= 2, `the fridge was not steady: ${[...readings]}`);
    assert.ok(steady.length >= 4 && steady.length <= 8, `${steady.length} events in 5 steady min`);
    // A warming fridge: every new reading is told at once.
    rig.plant.set("fridgeFailed", true);
    const warmingFrom = rig.tb.clock.now();
    await sleep(rig.tb.clock, 10 * MIN);
    const warming = rig.events.temperatures.filter((t) => t.ts > warmingFrom);
    const changes = warming.filter((t, i) =>
      i > 0 && t.storageTempC !== warming[i - 1]!.storageTempC
    );
    assert.ok(changes.length >= 10, `only ${changes.length} changes in 10 warming min`);
    // A repeat of the same reading is only ever the keepalive.
    const all = rig.events.temperatures;
    for (const [i, t] of all.entries()) {
      const prev = all[i - 1];
      if (!prev || prev.storageTempC !== t.storageTempC || prev.salesStopped !== t.salesStopped) {
        continue;
      }
      assert.ok(t.ts - prev.ts >= MIN, `a repeat after ${t.ts - prev.ts} ms`);
    }
  } finally {
    await rig.close();
  }
});
