import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { createLogger, silentLogger } from "../../log/log.ts";
import { createRealClock } from "../../clock/clock.ts";
import { sharedNatsUrl, waitFor } from "../../testing/nats.ts";
import { encodeFleetEvent, type FleetEvent, fleetNames } from "../../protocol/fleet.ts";
import { openPostgres } from "../db/database.ts";
import { migrateCloud } from "../db/migrations.ts";
import { startPrivatePostgres } from "../db/private_postgres.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./mod.ts";

Deno.test("Postgres down for a while: nothing lost, nothing duplicated", async (t) => {
  const pg = await startPrivatePostgres();
  const nc = await connect({ servers: sharedNatsUrl });
  const names = fleetNames(`tp${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
  const db = openPostgres(pg.url, { connectTimeoutS: 2, maxConnections: 4 });
  const workers: ReturnType<typeof startIngestWorker>[] = [];
  try {
    await migrateCloud(db);
    await ensureIngestConsumer(nc, names, { ackWaitMs: 2000 });
    for (let i = 0; i < 2; i++) {
      workers.push(startIngestWorker({
        db,
        nc,
        names,
        batchSize: 50,
        maxBackoffMs: 400,
        log: Deno.env.get("INGEST_LOG")
          ? createLogger({ clock: createRealClock(), level: "debug" })
          : silentLogger,
      }));
    }
    const js = jetstream(nc);
    let n = 0;
    const publish = async (count: number) => {
      const batch = Array.from({ length: count }, (): FleetEvent => {
        const ts = 1_760_000_000_000 + n++;
        return {
          id: crypto.randomUUID(),
          machineId: `m${n % 5}`,
          ts,
          kind: "sale",
          itemId: "101",
          priceCents: 150,
          soldAt: ts,
          source: "nats",
        };
      });
      await Promise.all(
        batch.map((e) =>
          js.publish(names.event(e.machineId, e.kind), encodeFleetEvent(e), { msgID: e.id })
        ),
      );
    };
    const stored = async () => {
      const rows = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM sales");
      return rows[0]!.n;
    };

    await t.step("events flow while Postgres is up", async () => {
      await publish(300);
      await waitFor("300 stored", async () => (await stored()) === 300 ? true : undefined, 20_000);
    });

    await t.step("while it is down, workers hand batches back and keep trying", async () => {
      await pg.stop();
      await publish(500);
      await waitFor(
        "failed attempts",
        () => workers.some((w) => w.stats().retries >= 2) ? true : undefined,
        20_000,
      );
      // Down a few more seconds: every batch comes back more than once meanwhile.
      await new Promise((r) => setTimeout(r, 1500));
    });

    await t.step("when it returns, every event is stored exactly once", async () => {
      await pg.start();
      await waitFor("800 stored", async () => {
        try {
          return (await stored()) === 800 ? true : undefined;
        } catch {
          return undefined;
        }
      }, 30_000);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await stored(), 800);
      const rows = await db.query<{ n: number; d: number }>(
        "SELECT count(*)::int AS n, count(DISTINCT sale_id)::int AS d FROM sales",
      );
      assert.deepEqual(rows[0], { n: 800, d: 800 });
      const retries = workers.reduce((s, w) => s + w.stats().retries, 0);
      assert.ok(retries >= 2, `batches were handed back (${retries})`);
    });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await deleteFleetStreams(nc, names);
    await nc.close();
    await db.close();
    await pg.dispose();
  }
});
