import assert from "node:assert/strict";
import { createSimOven } from "./oven.ts";
import { SimPlant } from "./plant.ts";
import { manualClock } from "../../testing/manual_clock.ts";
import { createSeededRandom } from "../../random/random.ts";

function setup(options: Parameters<typeof createSimOven>[1] = {}) {
  const clock = manualClock();
  const plant = new SimPlant(clock);
  return { clock, plant, ...createSimOven(plant, options) };
}

/** Advances in `stepMs` until `done` holds or `maxMs` passed; returns the time taken. */
async function runUntil(
  clock: ReturnType<typeof manualClock>,
  read: () => Promise<number>,
  done: (tempC: number) => boolean,
  maxMs: number,
  stepMs = 1000,
): Promise<number | null> {
  for (let t = 0; t <= maxMs; t += stepMs) {
    if (done(await read())) return t;
    clock.advance(stepMs);
  }
  return null;
}

Deno.test("sim oven model", async (t) => {
  await t.step("registers as the plant's oven probe, cold and off", () => {
    const { plant, model } = setup();
    assert.equal(plant.oven, model);
    const snap = plant.snapshot();
    assert.equal(snap.ovenTempC, 22);
    assert.equal(snap.heaterPct, 0);
    assert.equal(snap.ovenEnergyWh, 0);
  });

  await t.step(
    "full power heats 22 → 220 °C in minutes and would settle far above 280",
    async () => {
      const { clock, driver, plant } = setup();
      await driver.setHeaterPct(100);
      const heatUpMs = await runUntil(
        clock,
        () => driver.readTemperatureC(),
        (c) => c >= 220,
        3_600_000,
      );
      assert.ok(heatUpMs !== null);
      assert.ok(heatUpMs >= 3 * 60_000 && heatUpMs <= 6 * 60_000, `heat-up took ${heatUpMs} ms`);
      assert.equal(plant.snapshot().heaterPct, 100);
      clock.advance(3_600_000);
      assert.ok((await driver.readTemperatureC()) > 350);
    },
  );

  await t.step("energy accumulates with heater power", async () => {
    const { clock, driver, model } = setup();
    await driver.setHeaterPct(50);
    clock.advance(3_600_000);
    assert.ok(Math.abs(model.energyWh() - 1500) < 1e-6, `energy ${model.energyWh()}`);
    await driver.setHeaterPct(0);
    clock.advance(3_600_000);
    assert.ok(Math.abs(model.energyWh() - 1500) < 1e-6);
  });

  await t.step("a power cut stops heating: the oven cools and uses no energy", async () => {
    const { clock, driver, model, plant } = setup({ startTempC: 220 });
    await driver.setHeaterPct(100);
    clock.advance(10_000);
    const energyBefore = model.energyWh();
    const tempBefore = model.temperatureC();
    plant.set("heaterPowerCut", true);
    assert.equal(model.powerW(), 0);
    clock.advance(5 * 60_000);
    assert.ok(model.temperatureC() < tempBefore - 50, `only cooled to ${model.temperatureC()}`);
    assert.equal(model.energyWh(), energyBefore);
    assert.equal(model.heaterPct(), 100, "the commanded output is unchanged");
    plant.set("heaterPowerCut", false);
    clock.advance(60_000);
    assert.ok(model.energyWh() > energyBefore);
  });

  await t.step("a failed heater delivers nothing", async () => {
    const { clock, driver, model, plant } = setup();
    plant.set("heaterFailed", true);
    await driver.setHeaterPct(100);
    clock.advance(10 * 60_000);
    assert.equal(model.temperatureC(), 22);
    assert.equal(model.energyWh(), 0);
  });

  await t.step(
    "an open thermocouple reads full scale; the probe still tells the truth",
    async () => {
      const { driver, model, plant } = setup({ startTempC: 200 });
      plant.set("thermocoupleFailed", true);
      assert.equal(await driver.readTemperatureC(), 1372);
      assert.equal(model.temperatureC(), 200);
      plant.set("thermocoupleFailed", false);
      assert.equal(await driver.readTemperatureC(), 200);
    },
  );

  await t.step("loading a cold pizza costs heat", async () => {
    const { driver, model } = setup({ startTempC: 220 });
    model.loadPizza();
    const afterC = await driver.readTemperatureC();
    assert.ok(afterC < 210 && afterC > 195, `after loading ${afterC}`);
    model.loadPizza(2565);
    assert.ok(Math.abs((await driver.readTemperatureC()) - (afterC - 1)) < 1e-9);
  });

  await t.step("rejects heater power outside 0-100 %", async () => {
    const { driver, model } = setup();
    for (const pct of [-1, 101, Number.NaN]) {
      await assert.rejects(driver.setHeaterPct(pct), RangeError);
    }
    assert.equal(model.heaterPct(), 0);
  });

  await t.step("integration is deterministic however often the model is read", async () => {
    const a = setup();
    const b = setup();
    const t0 = a.clock.now();
    const script: [number, number][] = [[0, 100], [95_000, 40], [170_050, 0], [260_013, 75]];
    const moveTo = async (oven: typeof a, atMs: number, readEveryMs: number | null) => {
      while (readEveryMs !== null && oven.clock.now() + readEveryMs < t0 + atMs) {
        oven.clock.advance(readEveryMs);
        await oven.driver.readTemperatureC();
      }
      oven.clock.advance(t0 + atMs - oven.clock.now());
    };
    for (const [atMs, pct] of [...script, [400_000, 0] as [number, number]]) {
      await moveTo(a, atMs, 37);
      await moveTo(b, atMs, null);
      for (const oven of [a, b]) await oven.driver.setHeaterPct(pct);
    }
    assert.equal(a.model.temperatureC(), b.model.temperatureC());
    assert.equal(a.model.energyWh(), b.model.energyWh());
    assert.ok(a.model.energyWh() > 0);
  });

  await t.step("dispose unregisters the probe", () => {
    const { plant, model } = setup();
    model.dispose();
    assert.equal(plant.oven, null);
  });
});

Deno.test("sim oven thermocouple: noisy readings in the amplifier's steps, replayable by seed", async () => {
  const readings = async (seed: number) => {
    const { driver, model } = setup({
      startTempC: 220.1,
      thermocouple: { random: createSeededRandom(seed), noiseC: 0.5 },
    });
    const out: number[] = [];
    for (let i = 0; i < 2000; i++) out.push(await driver.readTemperatureC());
    assert.equal(model.temperatureC(), 220.1, "reading does not change the oven");
    return out;
  };
  const r = await readings(7);
  assert.ok(r.every((c) => Number.isInteger(c / 0.25)), "multiples of 0.25 °C");
  const mean = r.reduce((s, c) => s + c, 0) / r.length;
  const sd = Math.sqrt(r.reduce((s, c) => s + (c - mean) ** 2, 0) / r.length);
  assert.ok(Math.abs(mean - 220.1) < 0.05, `mean ${mean}`);
  assert.ok(sd > 0.45 && sd < 0.55, `sd ${sd}`);
  assert.deepEqual(await readings(7), r);
  assert.notDeepEqual(await readings(8), r);
  // Without a thermocouple error the reading is the exact temperature.
  assert.equal(await setup({ startTempC: 220.1 }).driver.readTemperatureC(), 220.1);
});
