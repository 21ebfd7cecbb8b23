/** Shipped scenarios, cut to the window where their story happens: part A. */
import assert from "node:assert/strict";
import { explain, runQuietly, shipped } from "./test_helpers.ts";

Deno.test("scenario normal-day: lunch peak, every invariant holds", async () => {
  const { summary } = await runQuietly(await shipped("normal-day", { fromMin: 300, hours: 0.3 }));
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.ok(summary.dispensed >= 2, `dispensed ${summary.dispensed}`);
  assert.equal(summary.open, 0);
});

Deno.test("scenario lunch-rush: more customers than one oven can serve", async () => {
  const { summary } = await runQuietly(await shipped("lunch-rush", { fromMin: 330, hours: 0.25 }));
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.ok(summary.customers >= 5, `customers ${summary.customers}`);
  assert.ok(summary.dispensed >= 3, `dispensed ${summary.dispensed}`);
});
