import assert from "node:assert/strict";
import fc from "fast-check";
import { createSimOven } from "../../hardware/sim/oven.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { manualClock } from "../../testing/manual_clock.ts";
import { defaultPidGains, initialPidState, type PidGains, pidStep } from "./pid.ts";

/** Runs the PID against the simulated oven for `durationMs` with a fixed control period. */
async function closedLoop(gains: PidGains, periodMs: number, durationMs: number, targetC = 220) {
  const clock = manualClock(0);
  const plant = new SimPlant(clock);
  const { driver, model } = createSimOven(plant);
  let state = initialPidState();
  const samples: { atMs: number; tempC: number }[] = [];
  for (let t = 0; t < durationMs; t += periodMs) {
    const measuredC = await driver.readTemperatureC();
    samples.push({ atMs: t, tempC: measuredC });
    const step = pidStep(gains, state, { targetC, measuredC, dtMs: t === 0 ? 0 : periodMs });
    state = step.state;
    await driver.setHeaterPct(step.outputPct);
    clock.advance(periodMs);
  }
  return { samples, model };
}

Deno.test("pid", async (t) => {
  await t.step("output and integral stay within 0-100 for any gains, errors and dt", () => {
    const finite = (max: number) => fc.double({ min: -max, max, noNaN: true });
    fc.assert(
      fc.property(
        fc.record({
          kp: finite(1e6),
          ki: finite(1e6),
          kd: finite(1e6),
          integralBandC: fc.double({ min: 0, max: 1e6, noNaN: true }),
        }),
        fc.array(
          fc.record({
            targetC: finite(1e6),
            measuredC: finite(1e6),
            dtMs: fc.double({ min: -1000, max: 1e7, noNaN: true }),
          }),
          { minLength: 1, maxLength: 50 },
        ),
        (gains, inputs) => {
          let state = initialPidState();
          for (const input of inputs) {
            const step = pidStep(gains, state, input);
            assert.ok(step.outputPct >= 0 && step.outputPct <= 100, `output ${step.outputPct}`);
            assert.ok(step.state.integralPct >= 0 && step.state.integralPct <= 100);
            state = step.state;
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  await t.step("a non-finite reading turns the heater off and keeps the state", () => {
    const state = { integralPct: 40, lastMeasuredC: 200 };
    for (const measuredC of [Number.NaN, Infinity, -Infinity]) {
      const step = pidStep(defaultPidGains, state, { targetC: 220, measuredC, dtMs: 100 });
      assert.equal(step.outputPct, 0);
      assert.deepEqual(step.state, state);
    }
  });

  await t.step("anti-windup: after long saturation the output leaves the rail at once", () => {
    // The seed's gains, with the integral allowed to learn at any error.
    const gains: PidGains = { kp: 2, ki: 0.5, kd: 1, integralBandC: Infinity };
    let state = initialPidState();
    // An hour at 100 % with the oven stuck 60 °C below target.
    for (let i = 0; i < 3600; i++) {
      const step = pidStep(gains, state, { targetC: 220, measuredC: 160, dtMs: 1000 });
      assert.equal(step.outputPct, 100);
      state = step.state;
    }
    assert.ok(state.integralPct <= 100);
    // The error turns: the very next output is off the rail.
    const turned = pidStep(gains, state, { targetC: 220, measuredC: 222, dtMs: 1000 });
    assert.ok(turned.outputPct < 100, `still saturated at ${turned.outputPct}`);
    // And a clear overshoot switches the heater off within a few steps.
    let s = turned.state;
    let out = turned.outputPct;
    for (let i = 0; i < 5 && out > 0; i++) {
      const step = pidStep(gains, s, { targetC: 220, measuredC: 260, dtMs: 1000 });
      s = step.state;
      out = step.outputPct;
    }
    assert.equal(out, 0);
  });

  await t.step("the derivative does not kick when the target jumps", () => {
    let state = initialPidState();
    state = pidStep(defaultPidGains, state, { targetC: 150, measuredC: 150, dtMs: 100 }).state;
    const step = pidStep(defaultPidGains, state, { targetC: 155, measuredC: 150, dtMs: 100 });
    // Proportional and integral only: the measurement did not move, so no derivative.
    assert.ok(Math.abs(step.outputPct - (defaultPidGains.kp * 5 + step.state.integralPct)) < 1e-9);
  });

  for (const periodMs of [100, 1000, 2000]) {
    await t.step(`default gains reach and hold 220 ± 3 °C (period ${periodMs} ms)`, async () => {
      const { samples } = await closedLoop(defaultPidGains, periodMs, 20 * 60_000);
      const reached = samples.find((s) => Math.abs(s.tempC - 220) <= 3);
      assert.ok(reached, "never reached 220 ± 3");
      assert.ok(reached.atMs < 6 * 60_000, `took ${reached.atMs} ms`);
      const after = samples.filter((s) => s.atMs >= reached.atMs);
      const maxC = Math.max(...after.map((s) => s.tempC));
      const minC = Math.min(...after.map((s) => s.tempC));
      assert.ok(maxC <= 223, `overshoot to ${maxC}`);
      assert.ok(minC >= 217, `sagged to ${minC}`);
    });
  }

  await t.step("default gains recover from a cold pizza without overshoot", async () => {
    const clock = manualClock(0);
    const plant = new SimPlant(clock);
    const { driver, model } = createSimOven(plant, { startTempC: 220 });
    let state = initialPidState();
    let maxAfterLoadC = 0;
    let recoveredAtMs: number | null = null;
    for (let t = 0; t < 15 * 60_000; t += 500) {
      if (t === 5 * 60_000) model.loadPizza();
      const measuredC = await driver.readTemperatureC();
      if (t > 5 * 60_000) {
        maxAfterLoadC = Math.max(maxAfterLoadC, measuredC);
        if (recoveredAtMs === null && measuredC >= 217) recoveredAtMs = t;
      }
      const step = pidStep(defaultPidGains, state, { targetC: 220, measuredC, dtMs: 500 });
      state = step.state;
      await driver.setHeaterPct(step.outputPct);
      clock.advance(500);
    }
    assert.ok(recoveredAtMs !== null && recoveredAtMs - 5 * 60_000 < 90_000);
    assert.ok(maxAfterLoadC <= 223, `overshoot to ${maxAfterLoadC}`);
  });
});
