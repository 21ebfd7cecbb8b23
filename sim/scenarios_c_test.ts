/** Shipped scenarios, cut to the window where their story happens: part C. */
import assert from "node:assert/strict";
import { explain, runQuietly, shipped } from "./test_helpers.ts";

Deno.test("scenario e-stop: safety trips, is reset, service resumes", async () => {
  const { summary } = await runQuietly(await shipped("e-stop", { fromMin: 80, hours: 0.4 }));
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.ok((summary.faultsSeen["safety.tripped"] ?? 0) >= 1, JSON.stringify(summary.faultsSeen));
});

Deno.test("scenario expired-stock: expired pizzas are discarded, never sold", async () => {
  const { summary, world } = await runQuietly(
    await shipped("expired-stock", { fromMin: 170, hours: 0.35 }),
  );
  assert.equal(summary.violations.length, 0, explain(summary));
  const expired = world.observer.discards.filter((d) => d.reason === "EXPIRED").length;
  assert.ok(expired >= 24, `expired discards ${expired}`);
  assert.ok(summary.dispensed >= 1, `dispensed ${summary.dispensed}`);
});
