import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { silentLogger } from "../../log/log.ts";
import { sharedNatsUrl, waitFor } from "../../testing/nats.ts";
import { encodeFleetEvent, fleetNames } from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { backends, openTestDatabase } from "../db/test_databases.ts";
import { processedEventsRetentionMs, pruneProcessedEvents } from "./prune.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./mod.ts";
import { alertEvent } from "./ingest_suite.ts";

const day = 24 * 60 * 60_000;

/** `n` admitted ids of `machineId`, admitted `ageDays` ago. */
async function admitted(db: Database, machineId: string, n: number, ageDays: number) {
  await db.query(
    `INSERT INTO processed_events (machine_id, event_id, kind, event_at, ingested_at)
     SELECT $1, $1 || '-' || g, 'alert', now(), now() - make_interval(days => $3)
       FROM generate_series(1, $2::int) AS g`,
    [machineId, n, ageDays],
  );
}

const count = async (db: Database, machineId: string) =>
  (await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM processed_events WHERE machine_id = $1",
    [machineId],
  ))[0]!.n;

for (const backend of backends) {
  Deno.test(`processed_events pruning on ${backend}`, async (t) => {
    const { db, dispose } = await openTestDatabase(backend);
    try {
      await t.step("ids older than the retention go, in slices; younger ones stay", async () => {
        await admitted(db, "old", 7, 15);
        await admitted(db, "young", 3, 13);
        await admitted(db, "new", 2, 0);
        assert.equal(await pruneProcessedEvents(db, { slice: 2 }), 7);
        assert.equal(await count(db, "old"), 0);
        assert.equal(await count(db, "young"), 3, "13 days is within the 14-day retention");
        assert.equal(await count(db, "new"), 2);
        assert.equal(await pruneProcessedEvents(db), 0, "nothing left to prune");
      });

      await t.step("a retention shorter than the stream's max age is refused", async () => {
        await assert.rejects(() => pruneProcessedEvents(db, { retentionMs: day }), RangeError);
        assert.equal(processedEventsRetentionMs, 14 * day);
        assert.equal(await count(db, "young"), 3);
      });

      await t.step("a worker prunes when it starts; a kept id still stops a repeat", async () => {
        const nc = await connect({ servers: sharedNatsUrl });
        const names = fleetNames(`tq${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
        try {
          await ensureIngestConsumer(nc, names);
          await admitted(db, "stale", 4, 20);
          const repeat = alertEvent("young", "young-1", "LOW_INVENTORY", false, 1_760_000_000_000);
          await jetstream(nc).publish(names.event("young", "alert"), encodeFleetEvent(repeat));
          const worker = startIngestWorker({ db, nc, names, log: silentLogger });
          await waitFor(
            "the stale ids pruned",
            async () => (await count(db, "stale")) ? undefined : true,
          );
          await waitFor("the repeat consumed", () => worker.stats().duplicates ? true : undefined);
          await worker.stop();
          assert.equal(worker.stats().applied, 0, "an id the gate kept is not applied again");
          const alerts = await db.query("SELECT 1 FROM alerts WHERE machine_id = 'young'");
          assert.equal(alerts.length, 0);
        } finally {
          await deleteFleetStreams(nc, names);
          await nc.close();
        }
      });
    } finally {
      await dispose();
    }
  });
}
