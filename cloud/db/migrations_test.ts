import assert from "node:assert/strict";
import { openPostgres } from "./database.ts";
import { cloudMigrations, machinePartitions, migrateCloud } from "./migrations.ts";
import { backends, createPostgresDatabase, openTestDatabase } from "./test_databases.ts";
import {
  addMachine,
  checkMachineKey,
  ConfigConflictError,
  desiredConfig,
  putDesiredConfig,
} from "./machines.ts";

const perMachineTables = [
  "machine_configs",
  "machine_api_keys",
  "orders",
  "payments",
  "sales",
  "inventory_levels",
  "inventory_items",
  "cooking_sessions",
  "alerts",
  "alert_conditions",
  "maintenance_logs",
  "temperatures",
  "metrics",
  "faults",
  "food_safety_log",
  "machine_status_log",
  "processed_events",
];

for (const backend of backends) {
  Deno.test(`migrations on ${backend}`, async (t) => {
    const test = await openTestDatabase(backend, { migrate: false });
    const { db } = test;
    try {
      await t.step("the first run applies every migration, the second none", async () => {
        assert.deepEqual(await migrateCloud(db), cloudMigrations.map((m) => m.version));
        assert.deepEqual(await migrateCloud(db), []);
        const rows = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM schema_migrations",
        );
        assert.equal(rows[0]!.n, cloudMigrations.length);
      });

      await t.step("every per-machine table is hash-partitioned on machine_id", async () => {
        const rows = await db.query<{ table: string; strategy: string; parts: number }>(
          `SELECT c.relname AS table, p.partstrat AS strategy,
                  (SELECT count(*)::int FROM pg_inherits i WHERE i.inhparent = c.oid) AS parts
             FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
            ORDER BY 1`,
        );
        assert.deepEqual(rows.map((r) => r.table), [...perMachineTables].sort());
        for (const r of rows) {
          assert.equal(r.strategy, "h", r.table);
          assert.equal(r.parts, machinePartitions, r.table);
        }
      });

      await t.step("a machine key speaks only for its machine; hashes only are kept", async () => {
        const keyA = await addMachine(db, "m-a", { name: "A" });
        const keyB = await addMachine(db, "m-b");
        assert.match(keyA, /^fmk_[0-9a-f]{64}$/);
        assert.equal(await checkMachineKey(db, "m-a", keyA), "ok");
        assert.equal(await checkMachineKey(db, "m-a", keyB), "other_machine");
        assert.equal(await checkMachineKey(db, "m-a", "fmk_nope"), "unknown");
        const stored = await db.query<{ key_hash: string }>(
          "SELECT key_hash FROM machine_api_keys",
        );
        assert.ok(stored.every((r) => r.key_hash !== keyA && r.key_hash !== keyB));
        await assert.rejects(() => addMachine(db, "alerts"), RangeError);
        await assert.rejects(() => addMachine(db, "bad.id"), RangeError);
      });

      await t.step("a desired config write is conditional on the seq its writer saw", async () => {
        assert.equal(await desiredConfig(db, "m-a"), null);
        const item = { itemId: "101", name: "Cola", priceCents: 175, quantity: 5 };
        assert.equal(await putDesiredConfig(db, "m-a", { version: "v1", items: [item] }, 0), 1);
        await assert.rejects(
          () => putDesiredConfig(db, "m-a", { version: "v2", items: [item] }, 0),
          ConfigConflictError,
        );
        await assert.rejects(
          () => putDesiredConfig(db, "m-a", { version: "v1", items: [item] }, 1),
          ConfigConflictError,
        );
        assert.equal(await putDesiredConfig(db, "m-a", { version: "v2", items: [item] }, 1), 2);
        const desired = await desiredConfig(db, "m-a");
        assert.equal(desired?.version, "v2");
        assert.deepEqual(desired?.items, [item]);
      });
    } finally {
      await test.dispose();
    }
  });
}

Deno.test("two processes migrating one Postgres at once apply each migration once", async () => {
  const created = await createPostgresDatabase();
  const a = openPostgres(created.url, { maxConnections: 2 });
  const b = openPostgres(created.url, { maxConnections: 2 });
  try {
    const [ra, rb] = await Promise.all([migrateCloud(a), migrateCloud(b)]);
    assert.deepEqual([...ra, ...rb].sort(), cloudMigrations.map((m) => m.version));
  } finally {
    await a.close();
    await b.close();
    await created.drop();
  }
});
