import assert from "node:assert/strict";
import { assign, createActor, fromPromise, setup } from "xstate";
import { every, sleep } from "../clock/clock.ts";
import { createSeededRandom } from "../random/random.ts";
import { createVirtualClock, RunawayError } from "./virtual_clock.ts";

const t0 = Date.UTC(2025, 0, 1);

Deno.test("virtual clock: timers and time", async (t) => {
  await t.step("time stands still until the clock runs", async () => {
    const clock = createVirtualClock(t0);
    let fired = false;
    clock.setTimeout(() => fired = true, 10);
    await Promise.resolve();
    assert.equal(clock.now(), t0);
    assert.equal(fired, false);
    assert.equal(clock.pending(), 1);
    assert.equal(clock.nextDueMs(), t0 + 10);
  });

  await t.step("timers fire in due order, ties in insertion order", async () => {
    const clock = createVirtualClock(t0);
    const log: string[] = [];
    const at = (name: string) => () => log.push(`${name}@${clock.now() - t0}`);
    clock.setTimeout(at("c"), 30);
    clock.setTimeout(at("a1"), 10);
    clock.setTimeout(at("z"), 0);
    clock.setTimeout(at("a2"), 10);
    clock.setTimeout(at("neg"), -5);
    clock.setTimeout(at("nan"), NaN);
    clock.setTimeout(at("frac"), 9.2);
    assert.equal(await clock.runFor(30), 7);
    assert.deepEqual(log, ["z@0", "neg@0", "nan@0", "a1@10", "a2@10", "frac@10", "c@30"]);
    assert.equal(clock.firedCount, 7);
  });

  await t.step("runUntil fires timers due at or before the target and stops there", async () => {
    const clock = createVirtualClock(t0);
    const log: number[] = [];
    for (const ms of [100, 200, 201]) clock.setTimeout(() => log.push(ms), ms);
    assert.equal(await clock.runUntil(t0 + 200), 2);
    assert.equal(clock.now(), t0 + 200);
    assert.deepEqual(log, [100, 200]);
    assert.equal(await clock.runFor(1000), 1);
    assert.equal(clock.now(), t0 + 1200);
    await assert.rejects(clock.runUntil(t0), RangeError);
    await assert.rejects(clock.runFor(0.5), RangeError);
    await assert.rejects(clock.runUntil(Infinity), RangeError);
  });

  await t.step("timers set while running fire in the same run when due", async () => {
    const clock = createVirtualClock(t0);
    const log: string[] = [];
    clock.setTimeout(() => {
      log.push(`outer@${clock.now() - t0}`);
      clock.setTimeout(() => log.push(`same@${clock.now() - t0}`), 0);
      clock.setTimeout(() => log.push(`later@${clock.now() - t0}`), 50);
      clock.setTimeout(() => log.push(`beyond@${clock.now() - t0}`), 500);
    }, 10);
    await clock.runFor(100);
    assert.deepEqual(log, ["outer@10", "same@10", "later@60"]);
    assert.equal(clock.pending(), 1);
  });

  await t.step(
    "clearTimeout cancels; foreign, fired and repeated handles are ignored",
    async () => {
      const clock = createVirtualClock(t0);
      const other = createVirtualClock(t0);
      const log: number[] = [];
      const handles = Array.from({ length: 200 }, (_, i) => clock.setTimeout(() => log.push(i), i));
      const foreign = other.setTimeout(() => {}, 1);
      for (let i = 0; i < 200; i++) if (i % 2 === 1) clock.clearTimeout(handles[i]);
      clock.clearTimeout(handles[1]);
      clock.clearTimeout(foreign);
      clock.clearTimeout(undefined);
      clock.clearTimeout(42);
      assert.equal(clock.pending(), 100);
      assert.equal(other.pending(), 1);
      await clock.runFor(10);
      clock.clearTimeout(handles[0]);
      assert.equal(clock.pending(), 94);
      await clock.runFor(1000);
      assert.deepEqual(log, Array.from({ length: 100 }, (_, i) => 2 * i));
      assert.equal(clock.pending(), 0);
    },
  );

  await t.step(
    "thousands of timers with cancellations fire in (due, insertion) order",
    async () => {
      const random = createSeededRandom(11);
      const clock = createVirtualClock(t0);
      const fired: number[] = [];
      const want: { dueMs: number; i: number }[] = [];
      const handles: unknown[] = [];
      for (let i = 0; i < 3000; i++) {
        const dueMs = random.int(0, 200);
        handles.push(clock.setTimeout(() => fired.push(i), dueMs));
        want.push({ dueMs, i });
      }
      const cancelledIds = new Set<number>();
      for (let k = 0; k < 1500; k++) {
        const i = random.int(0, 2999);
        cancelledIds.add(i);
        clock.clearTimeout(handles[i]);
      }
      assert.equal(clock.pending(), 3000 - cancelledIds.size);
      await clock.runFor(200);
      const expected = want.filter((w) => !cancelledIds.has(w.i))
        .sort((a, b) => a.dueMs - b.dueMs || a.i - b.i).map((w) => w.i);
      assert.deepEqual(fired, expected);
    },
  );

  await t.step("step fires the next timer, jumping time to it", async () => {
    const clock = createVirtualClock(t0);
    const log: number[] = [];
    clock.setTimeout(() => log.push(1), 1000);
    clock.setTimeout(() => log.push(2), 5000);
    assert.equal(await clock.step(), true);
    assert.deepEqual([log, clock.now()], [[1], t0 + 1000]);
    assert.equal(await clock.step(), true);
    assert.deepEqual([log, clock.now()], [[1, 2], t0 + 5000]);
    assert.equal(await clock.step(), false);
    assert.equal(clock.now(), t0 + 5000);
  });

  await t.step("every() from clock.ts ticks on virtual time", async () => {
    const clock = createVirtualClock(t0);
    const ticks: number[] = [];
    const stop = every(clock, 250, () => ticks.push(clock.now() - t0));
    await clock.runFor(1000);
    stop();
    await clock.runFor(1000);
    assert.deepEqual(ticks, [250, 500, 750, 1000]);
    assert.equal(clock.pending(), 0);
  });

  await t.step("one run at a time", async () => {
    const clock = createVirtualClock(t0);
    const first = clock.runFor(10);
    await assert.rejects(clock.runFor(10), /already running/);
    await first;
    assert.equal(clock.now(), t0 + 10);
  });

  await t.step("a throwing timer fails the run", async () => {
    const clock = createVirtualClock(t0);
    clock.setTimeout(() => {
      throw new Error("boom");
    }, 5);
    await assert.rejects(clock.runFor(10), /boom/);
    assert.equal(clock.now(), t0 + 5);
    assert.equal(await clock.runFor(10), 0);
  });

  await t.step("bad arguments are refused", () => {
    assert.throws(() => createVirtualClock(1.5), RangeError);
    assert.throws(() => createVirtualClock(0, { maxTimersPerInstant: 0 }), RangeError);
    assert.throws(() => createVirtualClock(0, { settleTicks: -1 }), RangeError);
  });
});

Deno.test("virtual clock: promise chains complete at their instant", async (t) => {
  await t.step("a sleep's continuation runs before a later timer of the same instant", async () => {
    const clock = createVirtualClock(t0);
    const log: string[] = [];
    (async () => {
      await sleep(clock, 1000);
      for (let i = 0; i < 5; i++) await Promise.resolve();
      log.push(`chain@${clock.now() - t0}`);
    })();
    await clock.settle();
    clock.setTimeout(() => log.push(`timer@${clock.now() - t0}`), 1000);
    await clock.runFor(1000);
    assert.deepEqual(log, ["chain@1000", "timer@1000"]);
  });

  await t.step("a long chain that keeps touching the clock completes at its instant", async () => {
    const clock = createVirtualClock(t0);
    let steps = 0;
    clock.setTimeout(async () => {
      for (let i = 0; i < 1000; i++) {
        await Promise.resolve();
        clock.now();
        steps++;
      }
    }, 10);
    clock.setTimeout(() => assert.equal(steps, 1000), 11);
    await clock.runFor(11);
    assert.equal(steps, 1000);
  });

  await t.step("a long chain that never touches the clock completes at its instant", async () => {
    const clock = createVirtualClock(t0);
    let steps = 0;
    const nested = async (depth: number): Promise<number> =>
      depth === 0 ? 0 : 1 + await nested(depth - 1);
    clock.setTimeout(async () => {
      for (let i = 0; i < 500; i++) await Promise.resolve();
      steps = await nested(200);
    }, 10);
    clock.setTimeout(() => assert.equal(steps, 200), 10);
    await clock.runFor(10);
    assert.equal(steps, 200);
  });

  await t.step("short queueMicrotask hops are waited for too", async () => {
    const clock = createVirtualClock(t0);
    let done = false;
    clock.setTimeout(() => queueMicrotask(() => queueMicrotask(() => done = true)), 10);
    clock.setTimeout(() => assert.equal(done, true), 10);
    await clock.runFor(10);
  });

  await t.step("promise chains started before a run settle before its first timer", async () => {
    const clock = createVirtualClock(t0);
    const log: string[] = [];
    Promise.resolve().then(() => Promise.resolve()).then(() =>
      clock.setTimeout(() => log.push("set by chain"), 0)
    );
    clock.setTimeout(() => log.push("set before"), 0);
    await clock.runFor(0);
    assert.deepEqual(log, ["set before", "set by chain"]);
  });
});

Deno.test("virtual clock: runaway guard", async (t) => {
  await t.step("a zero-delay timer chain fails naming the count", async () => {
    const clock = createVirtualClock(t0, { maxTimersPerInstant: 500 });
    const again = () => clock.setTimeout(again, 0);
    clock.setTimeout(again, 100);
    const err = await clock.runFor(1000).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof RunawayError);
    assert.equal(err.kind, "timers");
    assert.equal(err.count, 500);
    assert.equal(err.atMs, t0 + 100);
    assert.match(err.message, /more than 500 timers fired at virtual time/);
  });

  await t.step("many timers spread over time never trip it", async () => {
    const clock = createVirtualClock(t0, { maxTimersPerInstant: 10 });
    const again = () => clock.setTimeout(again, 1);
    clock.setTimeout(again, 0);
    assert.equal(await clock.runFor(5000), 5001);
  });

  await t.step("a promise chain that never stops fails naming the count", async () => {
    const clock = createVirtualClock(t0, { maxSettleTicks: 2000 });
    let stop = false;
    clock.setTimeout(async () => {
      while (!stop) {
        clock.now();
        await Promise.resolve();
      }
    }, 1);
    await assert.rejects(clock.runFor(10), (e: unknown) => {
      assert.ok(e instanceof RunawayError);
      assert.equal(e.kind, "microtasks");
      assert.match(e.message, /after 2000 microtask generations/);
      return true;
    });
    stop = true;
  });
});

Deno.test("virtual clock: XState v5 actors run on it", async (t) => {
  await t.step("an after-5000 transition happens exactly when 5000 ms pass", async () => {
    const machine = setup({}).createMachine({
      initial: "waiting",
      states: { waiting: { after: { 5000: "done" } }, done: {} },
    });
    const clock = createVirtualClock(t0);
    const actor = createActor(machine, { clock }).start();
    await clock.runFor(4999);
    assert.equal(actor.getSnapshot().value, "waiting");
    await clock.runFor(1);
    assert.equal(actor.getSnapshot().value, "done");
    actor.stop();
  });

  await t.step("a fromPromise actor on clock time resolves at its instant", async () => {
    const clock = createVirtualClock(t0);
    const machine = setup({
      types: { context: {} as { doneAtMs: number } },
      actors: { warmUp: fromPromise(() => sleep(clock, 1000)) },
      actions: { stampDone: assign({ doneAtMs: () => clock.now() }) },
    }).createMachine({
      context: { doneAtMs: 0 },
      initial: "warming",
      states: {
        warming: { invoke: { src: "warmUp", onDone: { target: "ready", actions: "stampDone" } } },
        ready: {},
      },
    });
    const actor = createActor(machine, { clock }).start();
    let seenByNextTimer = "";
    clock.setTimeout(() => seenByNextTimer = String(actor.getSnapshot().value), 1000);
    await clock.runFor(1000);
    assert.equal(seenByNextTimer, "ready");
    assert.equal(actor.getSnapshot().context.doneAtMs, t0 + 1000);
    actor.stop();
  });
});
