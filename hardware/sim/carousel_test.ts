import assert from "node:assert/strict";
import type { Clock, TimerHandle } from "../../clock/clock.ts";
import { SimPlant } from "./plant.ts";
import { createSimCarousel } from "./carousel.ts";

/** A hand-driven clock: time moves only through `advance`, firing due timers in order. */
function manualClock(startMs = 1_700_000_000_000) {
  let nowMs = startMs;
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock: Clock & { advance(ms: number): Promise<void> } = {
    now: () => nowMs,
    setTimeout: (fn, ms) => {
      const id = ++seq;
      timers.set(id, { at: nowMs + Math.max(0, ms), fn });
      return id;
    },
    clearTimeout: (h: TimerHandle) => void timers.delete(h as number),
    async advance(ms) {
      const until = nowMs + ms;
      while (true) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= until)
          .sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
        if (!due) break;
        timers.delete(due[0]);
        nowMs = due[1].at;
        due[1].fn();
        // Let promise continuations (awaiting sleep) run before the next timer.
        await new Promise((r) => setTimeout(r, 0));
      }
      nowMs = until;
      await new Promise((r) => setTimeout(r, 0));
    },
  };
  return clock;
}

const MIN = 60_000;

Deno.test("sim carousel: storage thermal model", async (t) => {
  await t.step(
    "holds about 3 °C for hours and registers as the plant's storage probe",
    async () => {
      const clock = manualClock();
      const plant = new SimPlant(clock, 22);
      const { model, driver } = createSimCarousel(plant);
      assert.equal(plant.storage, model);
      await clock.advance(6 * 60 * MIN);
      const tempC = model.temperatureC();
      assert.ok(tempC > 2.5 && tempC < 4, `holds near 3 °C, got ${tempC}`);
      assert.equal(await driver.storageTempC(), Math.round(tempC * 10) / 10);
      assert.equal(plant.snapshot().storageTempC, tempC);
      model.dispose();
      assert.equal(plant.storage, null);
    },
  );

  await t.step("a failed fridge warms toward ambient; fixed, it cools back", async () => {
    const clock = manualClock();
    const plant = new SimPlant(clock, 22);
    const { model } = createSimCarousel(plant);
    plant.set("fridgeFailed", true);
    await clock.advance(10 * MIN);
    assert.ok(model.temperatureC() < 5, "a closed fridge stays cold for a while");
    await clock.advance(20 * MIN);
    assert.ok(model.temperatureC() > 5, `above 5 °C after 30 min, got ${model.temperatureC()}`);
    await clock.advance(10 * 60 * MIN);
    assert.ok(model.temperatureC() > 20, `near ambient after hours, got ${model.temperatureC()}`);
    plant.set("fridgeFailed", false);
    await clock.advance(40 * MIN);
    assert.ok(model.temperatureC() <= 5, `cold again, got ${model.temperatureC()}`);
    model.dispose();
  });

  await t.step("an open door warms storage quickly even with the fridge working", async () => {
    const clock = manualClock();
    const plant = new SimPlant(clock, 22);
    const { model } = createSimCarousel(plant);
    plant.set("storageDoorOpen", true);
    await clock.advance(5 * MIN);
    assert.ok(model.temperatureC() > 5, `above 5 °C within 5 min, got ${model.temperatureC()}`);
    await clock.advance(60 * MIN);
    const openC = model.temperatureC();
    assert.ok(openC > 8 && openC < 22, `the fridge fights back, got ${openC}`);
    plant.set("storageDoorOpen", false);
    await clock.advance(20 * MIN);
    assert.ok(model.temperatureC() <= 5, `cold again, got ${model.temperatureC()}`);
    model.dispose();
  });

  await t.step("lazy integration does not depend on how often it is read", async () => {
    const a = manualClock();
    const b = manualClock();
    const pa = new SimPlant(a, 22);
    const pb = new SimPlant(b, 22);
    const ma = createSimCarousel(pa).model;
    const mb = createSimCarousel(pb).model;
    pa.set("storageDoorOpen", true);
    pb.set("storageDoorOpen", true);
    for (let i = 0; i < 100; i++) {
      ma.temperatureC();
      await a.advance(37_000);
    }
    await b.advance(3_700_000);
    assert.equal(ma.temperatureC(), mb.temperatureC());
    ma.dispose();
    mb.dispose();
  });
});

Deno.test("sim carousel: mechanism", async (t) => {
  await t.step("a retrieval takes 6-10 s of clock time and ejects from the slot", async () => {
    const clock = manualClock();
    const plant = new SimPlant(clock, 22);
    const { model, driver } = createSimCarousel(plant, { slots: 60 });
    for (const slot of [30, 31, 0]) {
      const start = clock.now();
      let doneAt = 0;
      const op = driver.rotateTo(slot).then(() => driver.eject()).then(() => {
        doneAt = clock.now();
      });
      await clock.advance(12_000);
      await op;
      const tookMs = doneAt - start;
      assert.ok(tookMs >= 6000 && tookMs <= 10_000, `slot ${slot}: took ${tookMs} ms`);
      assert.equal(model.position(), slot);
    }
    assert.deepEqual([...model.ejectedBySlot], [[30, 1], [31, 1], [0, 1]]);
    model.dispose();
  });

  await t.step("a slot that does not exist is refused", async () => {
    const clock = manualClock();
    const plant = new SimPlant(clock, 22);
    const { model, driver } = createSimCarousel(plant, { slots: 10 });
    await assert.rejects(driver.rotateTo(10), RangeError);
    await assert.rejects(driver.rotateTo(-1), RangeError);
    model.dispose();
  });

  await t.step("a jam fails the operation; an abort stops it", async () => {
    const clock = manualClock();
    const plant = new SimPlant(clock, 22);
    const { model, driver } = createSimCarousel(plant, { slots: 10 });
    model.setJammed(true);
    const jammed = assert.rejects(driver.rotateTo(3), /jammed/);
    await clock.advance(10_000);
    await jammed;
    assert.equal(model.position(), 0);
    model.setJammed(false);
    const ac = new AbortController();
    const aborted = assert.rejects(driver.eject(ac.signal));
    ac.abort(new Error("stop"));
    await aborted;
    await clock.advance(10_000);
    assert.equal(model.ejectedBySlot.size, 0);
    model.dispose();
  });
});
