/** Shipped scenarios, cut to the window where their story happens: part B. */
import assert from "node:assert/strict";
import { explain, runQuietly, shipped } from "./test_helpers.ts";

Deno.test("scenario card-reader-outage: cash only while the reader is offline", async () => {
  const { summary, world } = await runQuietly(
    await shipped("card-reader-outage", { fromMin: 80, hours: 0.3 }),
  );
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.ok(world.observer.machine.some((m) => m.status === "DEGRADED"), "never DEGRADED");
  assert.ok((summary.faultsSeen.cardReaderOffline ?? 0) >= 1);
});

Deno.test("scenario oven-failure-mid-cook: the oven faults, the order is refunded", async () => {
  const { summary } = await runQuietly(
    await shipped("oven-failure-mid-cook", { fromMin: 60, hours: 0.4 }),
  );
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.ok((summary.faultsSeen["oven.fault"] ?? 0) >= 1, JSON.stringify(summary.faultsSeen));
  assert.ok(summary.refunded >= 1, `refunded ${summary.refunded}`);
});
