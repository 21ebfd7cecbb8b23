import assert from "node:assert/strict";
import { createRealClock, every, sleep } from "./clock.ts";

Deno.test("real clock: runs `speed` times faster than the wall", async () => {
  const clock = createRealClock({ speed: 100 });
  const t0 = clock.now();
  await sleep(clock, 5_000);
  const elapsed = clock.now() - t0;
  assert.ok(elapsed >= 5_000, `elapsed ${elapsed}`);
});

Deno.test("real clock: timers fire in due order, and time never passes a pending timer", async () => {
  const clock = createRealClock({ speed: 1000 });
  const fired: Array<[string, number]> = [];
  const t0 = clock.now();
  // A deadline armed first, and a chain of short steps that ends before it:
  // however late the event loop runs, the chain must finish first.
  clock.setTimeout(() => fired.push(["deadline", clock.now() - t0]), 2_000);
  let steps = 0;
  const step = () => {
    if (++steps < 15) clock.setTimeout(step, 100);
    else fired.push(["chain", clock.now() - t0]);
  };
  clock.setTimeout(step, 100);
  // Block the event loop for 30 ms: 30 s of clock time.
  const until = performance.now() + 30;
  while (performance.now() < until) { /* busy */ }
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(fired.map(([n]) => n), ["chain", "deadline"]);
  assert.ok(fired[0]![1] >= 1_500 && fired[0]![1] < 2_000, `chain ended at ${fired[0]![1]}`);
  assert.ok(fired[1]![1] >= 2_000);
});

Deno.test("real clock: cleared timers never fire and every() stops", async () => {
  const clock = createRealClock({ speed: 1000 });
  let fired = 0;
  const h = clock.setTimeout(() => fired++, 100);
  clock.clearTimeout(h);
  let ticks = 0;
  const stop = every(clock, 100, () => ticks++);
  await sleep(clock, 1_000);
  stop();
  const seen = ticks;
  await sleep(clock, 1_000);
  assert.equal(fired, 0);
  assert.ok(seen >= 5, `ticks ${seen}`);
  assert.equal(ticks, seen);
});

Deno.test("real clock: a bad speed is refused naming it", () => {
  assert.throws(() => createRealClock({ speed: 0 }), /speed must be a positive number, got "0"/);
});

Deno.test("real clock: a chain re-armed from a late timer keeps its place before a later deadline", async () => {
  const clock = createRealClock({ speed: 1000 });
  const fired: string[] = [];
  // Inside a timer's callback time stands still, so both start from one instant.
  clock.setTimeout(() => {
    clock.setTimeout(() => fired.push("deadline"), 2_000);
    clock.setTimeout(() => {
      // ~1.9 s of machine time pass in wall work while nothing else is overdue:
      // the step re-armed here is due at 1 000 + 999, before the deadline.
      const until = performance.now() + 1.9;
      while (performance.now() < until) { /* busy */ }
      clock.setTimeout(() => fired.push("chain"), 999);
    }, 1_000);
  }, 0);
  await sleep(clock, 3_000);
  assert.deepEqual(fired, ["chain", "deadline"]);
});
