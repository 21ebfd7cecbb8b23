/**
 * The device shadow end to end: an admin changes a price in the cloud, the
 * cloud pushes the config to a real controller over NATS, the machine sells at
 * the new price and reports the version it runs.
 */
import assert from "node:assert/strict";
import { addMachine } from "../db/machines.ts";
import { startTestMachine } from "../../testing/machine.ts";
import { defaultConfig } from "../../controller/default_config.ts";
import { cloudFixture } from "./test_fixture.ts";

Deno.test("config push: a new price reaches a running controller at once", async () => {
  const f = await cloudFixture();
  const m = await startTestMachine({ speed: 100 });
  try {
    await addMachine(f.db, m.machineId, { locationAddress: "Station" });
    const v2 = {
      ...defaultConfig,
      version: "v2",
      menu: defaultConfig.menu.map((p) => p.pizzaId === "veggie" ? { ...p, priceCents: 990 } : p),
    };
    const r = await f.call("PUT", `/api/v1/admin/machine/${m.machineId}/config`, {
      token: f.tokens.admin,
      body: {
        expectedSeq: 0,
        version: "v2",
        items: v2.menu.map((p) => ({
          itemId: p.pizzaId,
          name: p.name,
          priceCents: p.priceCents,
          quantity: 12,
        })),
        config: v2,
      },
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const menu = await m.http("GET", "/api/v1/machine/{m}/menu");
    const veggie = (menu.body.pizzas as Array<{ pizzaId: string; priceCents: number }>)
      .find((p) => p.pizzaId === "veggie");
    assert.equal(veggie?.priceCents, 990);
    const audit = await f.call("GET", "/api/v1/admin/audit", { token: f.tokens.admin });
    assert.match(JSON.stringify(audit.json), /"pushed":"applied"/);
  } finally {
    await m.dispose();
    await f.close();
  }
});
