import assert from "node:assert/strict";
import { decideRestart, defaultRestartIntensity } from "./restart_intensity.ts";

/** Feeds failures at `timesMs` and returns which were allowed a restart. */
function replay(timesMs: number[]): boolean[] {
  let historyMs: number[] = [];
  return timesMs.map((t) => {
    const decision = decideRestart(historyMs, t);
    historyMs = decision.historyMs;
    return decision.allowed;
  });
}

Deno.test("restart intensity: at most 3 restarts in 60 s", async (t) => {
  await t.step("the default is OTP's rule as the issue asks: 3 in 60 s", () => {
    assert.deepEqual(defaultRestartIntensity, { maxRestarts: 3, periodMs: 60_000 });
  });

  await t.step("three failures within the window are all restarted", () => {
    assert.deepEqual(replay([0, 1_000, 2_000]), [true, true, true]);
  });

  await t.step("a fourth failure within the window is refused", () => {
    assert.deepEqual(replay([0, 1_000, 2_000, 59_000]), [true, true, true, false]);
  });

  await t.step("the window slides: a restart older than 60 s no longer counts", () => {
    assert.deepEqual(replay([0, 10_000, 20_000, 60_001]), [true, true, true, true]);
    // ...but the three inside the window still do.
    assert.deepEqual(replay([0, 10_000, 20_000, 60_001, 60_002]), [true, true, true, true, false]);
  });

  await t.step("a restart exactly one period ago has left the window", () => {
    assert.deepEqual(replay([0, 10_000, 20_000, 60_000]), [true, true, true, true]);
  });

  await t.step("a refused failure does not itself count as a restart", () => {
    // Refused at 30 s; at 60 001 the restart at 0 has left, so one slot is free.
    assert.deepEqual(replay([0, 10_000, 20_000, 30_000, 60_001]), [true, true, true, false, true]);
  });

  await t.step("the history is pruned, so it never grows past maxRestarts", () => {
    let historyMs: number[] = [];
    for (let t = 0; t < 1_000_000; t += 7_000) historyMs = decideRestart(historyMs, t).historyMs;
    assert.ok(historyMs.length <= 3);
  });

  await t.step("a custom intensity is honoured; zero restarts refuses the first", () => {
    const once = { maxRestarts: 1, periodMs: 1_000 };
    const first = decideRestart([], 0, once);
    assert.equal(first.allowed, true);
    assert.equal(decideRestart(first.historyMs, 500, once).allowed, false);
    assert.equal(decideRestart(first.historyMs, 1_000, once).allowed, true);
    assert.equal(decideRestart([], 0, { maxRestarts: 0, periodMs: 1_000 }).allowed, false);
  });

  await t.step("a nonsensical intensity is a RangeError", () => {
    assert.throws(() => decideRestart([], 0, { maxRestarts: -1, periodMs: 1 }), RangeError);
    assert.throws(() => decideRestart([], 0, { maxRestarts: 1.5, periodMs: 1 }), RangeError);
    assert.throws(() => decideRestart([], 0, { maxRestarts: 3, periodMs: 0 }), RangeError);
  });
});
