import assert from "node:assert/strict";
import { emptyAlertBook } from "./alert_book.ts";
import { type ComponentWatch, planTick, type SupervisorContext, tickIsRoutine } from "./plans.ts";
import { defaultRestartIntensity } from "./restart_intensity.ts";

const timeoutMs = 15_000;

const watch = (lastSeenMs: number): ComponentWatch => ({
  state: "idle",
  alive: true,
  lastSeenMs,
  restarts: 0,
  restartHistoryMs: [],
  restarting: false,
  gaveUp: false,
  restartsAfterRestart: null,
  staleUntilMs: 0,
});

/** The supervisor and the oven, last seen at `ovenSeenMs` and `ownSeenMs`. */
const context = (ovenSeenMs: number, ownSeenMs = ovenSeenMs): SupervisorContext => ({
  machineId: "m-1",
  idPrefix: "sup-test",
  heartbeatTimeoutMs: timeoutMs,
  intensity: defaultRestartIntensity,
  components: { oven: watch(ovenSeenMs), supervisor: watch(ownSeenMs) },
  alerts: emptyAlertBook(),
  alertSeq: 0,
  abortedOrderIds: [],
  safetyCauses: [],
  maintenanceReason: null,
  sweepSeq: 0,
});

Deno.test("supervisor watchdog ticks", async (t) => {
  await t.step("a tick that only moves last-seen times forward is routine", () => {
    const ctx = context(0);
    const tick = {
      nowMs: 20_000,
      sinceLastTickMs: 3_750,
      seen: { oven: 18_000, supervisor: 19_000 },
    };
    assert.equal(tickIsRoutine(ctx, tick), true);
    // Its only change is the merge a later tick makes all the same.
    assert.deepEqual(Object.keys(planTick(ctx, tick).context), ["components"]);
  });

  await t.step("a tick that finds a silent component goes to the machine", () => {
    const tick = { nowMs: 20_000, sinceLastTickMs: 3_750, seen: { supervisor: 19_000 } };
    assert.equal(tickIsRoutine(context(0, 19_000), tick), false);
    assert.deepEqual(planTick(context(0, 19_000), tick).restarts, ["oven"]);
  });

  await t.step("a late tick means we were stalled: nobody is blamed", () => {
    // Every earlier tick was skipped as routine: the ticker's own gap tells the stall.
    const tick = { nowMs: 60_000, sinceLastTickMs: 40_000, seen: { supervisor: 59_000 } };
    assert.equal(tickIsRoutine(context(0, 59_000), tick), false);
    const plan = planTick(context(0, 59_000), tick);
    assert.deepEqual(plan.restarts, []);
    assert.match(plan.notices[0]?.msg ?? "", /stalled/);
    assert.equal(plan.context.components?.oven?.lastSeenMs, 60_000);
  });

  await t.step("the first tick of a ticker is never late", () => {
    const tick = {
      nowMs: 60_000,
      sinceLastTickMs: null,
      seen: { oven: 59_000, supervisor: 59_000 },
    };
    assert.equal(tickIsRoutine(context(0), tick), true);
  });
});
