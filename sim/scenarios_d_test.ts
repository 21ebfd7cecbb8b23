/** Shipped scenarios, cut to the window where their story happens: part D. */
import assert from "node:assert/strict";
import { explain, runQuietly, shipped } from "./test_helpers.ts";

Deno.test("scenario nats-partition-power-loss: the controller boots again on its journal", async () => {
  const { summary } = await runQuietly(
    await shipped("nats-partition-power-loss", { fromMin: 100, hours: 0.35 }),
  );
  assert.equal(summary.violations.length, 0, explain(summary));
  assert.equal(summary.boots, 2);
  assert.equal(summary.open, 0);
});

Deno.test("scenario sold-out-restock: sold out, then restocked", async () => {
  // Three pizzas left at 13:00: sold out before the 13:30 restock.
  const r = await shipped("sold-out-restock", { fromMin: 180, hours: 0.6 });
  const { summary, world } = await runQuietly({ ...r, stock: r.stock.slice(0, 3) });
  assert.equal(summary.violations.length, 0, explain(summary));
  const stock = world.observer.stock.map((s) => s.items);
  assert.ok(Math.max(...stock) >= 24, `stock ${stock.join(",")}`);
  assert.ok(
    (summary.customerOutcomes["sold out"] ?? 0) >= 1,
    JSON.stringify(summary.customerOutcomes),
  );
});
