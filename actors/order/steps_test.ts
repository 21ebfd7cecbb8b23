import assert from "node:assert/strict";
import { fail, ok, type Result } from "../../protocol/define.ts";
import { createVirtualClock } from "../../sim/virtual_clock.ts";
import { StepError } from "./order_machine.ts";
import { untilDone, type UntilDoneOptions, type WakeSource } from "./steps.ts";

type Op = { status: "RUNNING" | "DONE" };

/** An operation that reports DONE once `finish()` was called, counting the asks. */
function operation(replies?: (n: number) => Result<Op> | undefined) {
  let finished = false;
  const op = {
    asks: 0,
    finish: () => {
      finished = true;
    },
    attempt: () => {
      op.asks++;
      const forced = replies?.(op.asks);
      return Promise.resolve(forced ?? ok<Op>({ status: finished ? "DONE" : "RUNNING" }));
    },
  };
  return op;
}

/** A wake source the test fires by hand, remembering whether it is subscribed. */
function handWake() {
  const w = { subscribed: false, fire: () => {}, source: null as unknown as WakeSource };
  w.source = (wake) => {
    w.subscribed = true;
    w.fire = wake;
    return () => {
      w.subscribed = false;
      w.fire = () => {};
    };
  };
  return w;
}

const isDone = (r: Op) => r.status === "DONE";

/** Waits for `op` on a fresh virtual clock: polls every 10 s, 60 s deadline, unless `options` say. */
function waitOn(op: ReturnType<typeof operation>, options: Partial<UntilDoneOptions> = {}) {
  const clock = createVirtualClock(1_000_000);
  const done = untilDone(op.attempt, isDone, {
    clock,
    what: "test",
    pollMs: 10_000,
    deadlineMs: 60_000,
    ...options,
  });
  return { clock, done };
}

Deno.test("untilDone: the component's event ends the wait at once; the poll is the fallback", async (t) => {
  await t.step("an event asks again without waiting for the poll", async () => {
    const op = operation();
    const w = handWake();
    const { clock, done } = waitOn(op, { wakeOn: [w.source] });
    await clock.settle();
    assert.equal(op.asks, 1);
    assert.equal(w.subscribed, true);
    op.finish();
    w.fire();
    await clock.settle();
    assert.deepEqual(await done, { status: "DONE" });
    assert.equal(op.asks, 2);
    assert.equal(clock.now(), 1_000_000, "no clock time passed");
    assert.equal(w.subscribed, false, "unsubscribed once done");
  });

  await t.step("a lost event: the poll asks again after pollMs", async () => {
    const op = operation();
    const w = handWake();
    const { clock, done } = waitOn(op, { wakeOn: [w.source] });
    await clock.runFor(9_999);
    assert.equal(op.asks, 1);
    op.finish();
    await clock.runFor(1);
    assert.deepEqual(await done, { status: "DONE" });
    assert.equal(op.asks, 2);
  });

  await t.step("an answer that names its end sets the next ask", async () => {
    const op = operation();
    const { clock, done } = waitOn(op, {
      nextPollMs: (r) => (r as Op).status === "RUNNING" ? 25_000 : 10_000,
    });
    await clock.runFor(24_999);
    assert.equal(op.asks, 1, "no ask before the hinted time");
    await clock.runFor(1);
    assert.equal(op.asks, 2);
    op.finish();
    await clock.runFor(25_000);
    assert.deepEqual(await done, { status: "DONE" });
    assert.equal(op.asks, 3);
  });

  await t.step("an event that arrives while an attempt is in flight is not lost", async () => {
    const w = handWake();
    const op = operation((n) => {
      if (n !== 1) return undefined;
      op.finish();
      w.fire();
      return ok<Op>({ status: "RUNNING" });
    });
    const { clock, done } = waitOn(op, { wakeOn: [w.source] });
    await clock.settle();
    assert.deepEqual(await done, { status: "DONE" });
    assert.equal(op.asks, 2);
    assert.equal(clock.now(), 1_000_000);
  });
});

Deno.test("untilDone: refusals, deadlines and aborts end the wait and unsubscribe", async (t) => {
  await t.step("transient errors are retried, a refusal is thrown at once", async () => {
    const w = handWake();
    const op = operation((n) =>
      n === 1 ? fail("UNAVAILABLE", "oven is not answering") : fail("CONFLICT", "oven in fault")
    );
    const { clock, done } = waitOn(op, { what: "cooking", wakeOn: [w.source] });
    const caught = done.catch((err: unknown) => err);
    await clock.settle();
    w.fire();
    await clock.settle();
    const err = await caught;
    assert.ok(err instanceof StepError);
    assert.equal(err.reply.code, "CONFLICT");
    assert.equal(op.asks, 2);
    assert.equal(w.subscribed, false);
  });

  await t.step("the deadline holds: TIMEOUT naming what was awaited", async () => {
    const op = operation();
    const { clock, done } = waitOn(op, { what: "arm move to PICKUP", deadlineMs: 25_000 });
    const caught = done.catch((err: unknown) => err);
    await clock.runFor(25_000);
    const err = await caught;
    assert.ok(err instanceof StepError);
    assert.equal(err.reply.code, "TIMEOUT");
    assert.match(err.reply.message, /arm move to PICKUP did not finish within 25 s/);
    assert.equal(op.asks, 4, "asked at 0, 10, 20 and at the deadline");
  });

  await t.step("an abort ends the wait; later events do nothing", async () => {
    const op = operation();
    const w = handWake();
    const stop = new AbortController();
    const { clock, done } = waitOn(op, { signal: stop.signal, wakeOn: [w.source] });
    const caught = done.catch((err: unknown) => err);
    await clock.settle();
    stop.abort(new Error("order stopped"));
    const err = await caught;
    assert.ok(err instanceof Error);
    assert.equal(err.message, "order stopped");
    assert.equal(w.subscribed, false);
    w.fire();
    await clock.runFor(20_000);
    assert.equal(op.asks, 1);
  });
});
