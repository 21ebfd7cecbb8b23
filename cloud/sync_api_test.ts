import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { silentLogger } from "../log/log.ts";
import { createRealClock } from "../clock/clock.ts";
import { sharedNatsUrl, waitFor } from "../testing/nats.ts";
import { fleetNames } from "../protocol/fleet.ts";
import { backends, openTestDatabase } from "./db/test_databases.ts";
import { putDesiredConfig } from "./db/machines.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./ingest/mod.ts";
import { addMachine, createSyncApi } from "./sync_api.ts";

/** Seed 000's example payload, verbatim. */
const seedPayload = {
  "last_sync_ts": "2025-10-12T10:00:00Z",
  "config_version": "v1.2",
  "transactions": [
    { "ts": "2025-10-12T10:01:30Z", "item_id": "101", "price_paid": 1.50 },
    { "ts": "2025-10-12T10:03:15Z", "item_id": "102", "price_paid": 1.00 },
  ],
  "inventory_levels": {
    "101": 3,
    "102": 8,
  },
};

for (const backend of backends) {
  Deno.test(`POST /api/v1/machines/{machine_id}/sync on ${backend}`, async (t) => {
    const test = await openTestDatabase(backend);
    const { db } = test;
    const nc = await connect({ servers: sharedNatsUrl });
    const names = fleetNames(`ts${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
    await ensureIngestConsumer(nc, names);
    const worker = startIngestWorker({ db, nc, names, log: silentLogger, batchSize: 50 });
    const app = createSyncApi({ db, nc, names, log: silentLogger });
    const post = (machineId: string, body: unknown, key?: string) =>
      app.request(`/api/v1/machines/${machineId}/sync`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const count = async (sql: string, params: unknown[] = []) =>
      (await db.query<{ n: number }>(sql, params))[0]!.n;
    try {
      const key = await addMachine(db, "vm-1", { name: "Lobby" });
      const otherKey = await addMachine(db, "vm-2");

      await t.step("401 without a key or with an unknown one; 403 with another's", async () => {
        const none = await post("vm-1", seedPayload);
        assert.equal(none.status, 401);
        assert.equal((await none.json()).error.code, "UNAUTHORIZED");
        assert.equal((await post("vm-1", seedPayload, "fmk_guess")).status, 401);
        const other = await post("vm-1", seedPayload, otherKey);
        assert.equal(other.status, 403);
        assert.match((await other.json()).error.message, /vm-1/);
        // Authentication comes first: a stranger's bad body is still a 401.
        assert.equal((await post("vm-1", { nonsense: true })).status, 401);
      });

      await t.step("400 names the bad field", async () => {
        const cases: Array<[unknown, RegExp]> = [
          [{
            ...seedPayload,
            transactions: [{ ...seedPayload.transactions[0], price_paid: "1.50" }],
          }, /transactions\.0\.price_paid/],
          [{
            ...seedPayload,
            transactions: [{ ...seedPayload.transactions[0], price_paid: 1.505 }],
          }, /transactions\.0\.price_paid: must have at most 2 decimals/],
          [{ ...seedPayload, last_sync_ts: "yesterday" }, /last_sync_ts/],
          [{ ...seedPayload, inventory_levels: { "101": -1 } }, /inventory_levels\.101/],
          [{ ...seedPayload, surprise: 1 }, /surprise/],
          [(({ config_version: _, ...rest }) => rest)(seedPayload), /config_version/],
          ["{not json", /not valid JSON/],
        ];
        for (const [body, message] of cases) {
          const res = await post("vm-1", body, key);
          assert.equal(res.status, 400, String(message));
          const json = await res.json();
          assert.equal(json.error.code, "BAD_REQUEST");
          assert.match(json.error.message, message);
        }
      });

      await t.step(
        "the seed's payload is accepted; without a desired config, no new_config",
        async () => {
          const res = await post("vm-1", seedPayload, key);
          assert.equal(res.status, 200);
          assert.deepEqual(await res.json(), { status: "success" });
        },
      );

      await t.step("the batch sent twice is stored once, prices in cents", async () => {
        assert.equal((await post("vm-1", seedPayload, key)).status, 200);
        await waitFor(
          "sales stored",
          async () =>
            (await count("SELECT count(*)::int AS n FROM sales WHERE machine_id = 'vm-1'")) === 2
              ? true
              : undefined,
        );
        await waitFor("stock and reported version stored", async () =>
          (await count(
              `SELECT count(*)::int AS n FROM machines
                WHERE machine_id = 'vm-1' AND reported_config_version = 'v1.2'`,
            )) === 1
            ? true
            : undefined);
        await new Promise((r) => setTimeout(r, 300));
        const sales = await db.query<{ item_id: string; price_cents: number; source: string }>(
          "SELECT item_id, price_cents, source FROM sales WHERE machine_id = 'vm-1' ORDER BY 1",
        );
        assert.deepEqual(sales, [
          { item_id: "101", price_cents: 150, source: "sync" },
          { item_id: "102", price_cents: 100, source: "sync" },
        ]);
        const levels = await db.query<{ item_id: string; quantity: number }>(
          "SELECT item_id, quantity FROM inventory_levels WHERE machine_id = 'vm-1' ORDER BY 1",
        );
        assert.deepEqual(levels, [{ item_id: "101", quantity: 3 }, {
          item_id: "102",
          quantity: 8,
        }]);
        // The repeat never reached the database: JetStream dropped it by message id.
        assert.equal(worker.stats().applied, 4);
      });

      await t.step("a stale config_version gets new_config in the seed's shape", async () => {
        await putDesiredConfig(db, "vm-1", {
          version: "v1.3",
          items: [
            { itemId: "101", name: "Cola", priceCents: 175, quantity: 5 },
            { itemId: "205", name: "Water", priceCents: 125, quantity: 15 },
          ],
        }, 0);
        const res = await post("vm-1", { ...seedPayload, transactions: [] }, key);
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {
          status: "success",
          new_config: {
            version: "v1.3",
            items: [
              { item_id: "101", name: "Cola", price: 1.75, quantity: 5 },
              { item_id: "205", name: "Water", price: 1.25, quantity: 15 },
            ],
          },
        });
        const current = await post(
          "vm-1",
          { ...seedPayload, config_version: "v1.3", transactions: [] },
          key,
        );
        assert.deepEqual(await current.json(), { status: "success" });
      });

      await t.step("a good key is trusted 10 s, then asked again: revoked, it stops", async () => {
        const real = createRealClock();
        let skewMs = 0;
        const clock = {
          now: () => real.now() + skewMs,
          setTimeout: (fn: () => void, ms: number) => real.setTimeout(fn, ms),
          clearTimeout: (h: unknown) => real.clearTimeout(h),
        };
        const trusting = createSyncApi({ db, nc, names, clock, log: silentLogger });
        const asking = createSyncApi({ db, nc, names, keyCacheMs: 0, log: silentLogger });
        const sync = (api: typeof trusting) =>
          api.request("/api/v1/machines/vm-2/sync", {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${otherKey}` },
            body: JSON.stringify({ ...seedPayload, transactions: [] }),
          });
        assert.equal((await sync(trusting)).status, 200);
        await db.query("UPDATE machine_api_keys SET revoked_at = now() WHERE machine_id = 'vm-2'");
        assert.equal((await sync(asking)).status, 401, "without the cache: refused at once");
        skewMs = 9_000;
        assert.equal((await sync(trusting)).status, 200, "still trusted within 10 s");
        skewMs = 10_001;
        assert.equal((await sync(trusting)).status, 401, "asked again after 10 s: refused");
      });

      await t.step("503 when the fleet stream does not take the batch", async () => {
        const lost = createSyncApi({
          db,
          nc,
          names: fleetNames("tnostream"),
          log: silentLogger,
          publishTimeoutMs: 500,
        });
        const res = await lost.request("/api/v1/machines/vm-1/sync", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify(seedPayload),
        });
        assert.equal(res.status, 503);
        assert.equal((await res.json()).error.code, "UNAVAILABLE");
      });
    } finally {
      await worker.stop();
      await deleteFleetStreams(nc, names);
      await nc.close();
      await test.dispose();
    }
  });
}
