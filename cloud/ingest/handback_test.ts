import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { createSeededRandom } from "../../random/random.ts";
import { silentLogger } from "../../log/log.ts";
import { sharedNatsUrl, waitFor } from "../../testing/nats.ts";
import { encodeFleetEvent, fleetNames } from "../../protocol/fleet.ts";
import { openTestDatabase } from "../db/test_databases.ts";
import { createSimulatedFleet } from "./simulated_fleet.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./mod.ts";

Deno.test("a stopped worker hands back what it fetched ahead, at once", async () => {
  const { db, dispose } = await openTestDatabase("postgres");
  const nc = await connect({ servers: sharedNatsUrl });
  const names = fleetNames(`th${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
  try {
    // An ack wait far beyond the test: only a hand-back can bring a message back in time.
    await ensureIngestConsumer(nc, names, { ackWaitMs: 120_000 });
    let clockMs = 1_760_000_000_000;
    const sim = createSimulatedFleet(
      ["hb0", "hb1", "hb2"],
      createSeededRandom(3),
      () => clockMs += 5,
    );
    const events = Array.from({ length: 3000 }, () => sim.next());
    const js = jetstream(nc);
    await Promise.all(
      events.map((e) =>
        js.publish(names.event(e.machineId, e.kind), encodeFleetEvent(e), { msgID: e.id })
      ),
    );
    // Small batches: the first worker stops with a batch fetched ahead in hand.
    const first = startIngestWorker({ db, nc, names, batchSize: 100, log: silentLogger });
    await waitFor("a few batches", () => first.stats().batches >= 3 ? true : undefined);
    await first.stop();
    const second = startIngestWorker({ db, nc, names, batchSize: 500, log: silentLogger });
    const seen = () => first.stats().messages + second.stats().messages;
    await waitFor("every event consumed", () => seen() >= events.length ? true : undefined, 20_000);
    await second.stop();
    const applied = first.stats().applied + second.stats().applied;
    const duplicates = first.stats().duplicates + second.stats().duplicates;
    assert.equal(applied + duplicates, events.length);
    const temps = events.filter((e) => e.kind === "temperature").length;
    const rows = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM temperatures");
    assert.equal(rows[0]!.n, temps);
  } finally {
    await deleteFleetStreams(nc, names);
    await nc.close();
    await dispose();
  }
});
