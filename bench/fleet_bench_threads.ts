/**
 * The fleet bench's threads (Deno Workers): the simulated fleet publishing to
 * JetStream, and ingestion workers on Postgres. Each thread has its own NATS
 * connection (and database pool), as separate machines and separate worker
 * processes would; the main thread only collects figures.
 *
 * Messages in: `{ role: "publisher", … }` or `{ role: "ingester", … }`, then
 * `{ stop: true }` for an ingester. Messages out: `{ lags: number[] }` per
 * batch (ingester), `{ done: … }` at the end, with the CPU seconds the thread used.
 */
import { Buffer } from "node:buffer";
import { connect, headers } from "@nats-io/transport-node";
import { silentLogger } from "../log/log.ts";
import { createSeededRandom } from "../random/random.ts";
import { fleetNames } from "../protocol/fleet.ts";
import { openPostgres } from "../cloud/db/database.ts";
import { createSimulatedFleet } from "../cloud/ingest/simulated_fleet.ts";
import { startIngestWorker } from "../cloud/ingest/mod.ts";
import { threadCpuS } from "./fleet_bench_cpu.ts";

/** What the publisher thread is told. */
export interface PublisherJob {
  role: "publisher";
  natsUrl: string;
  root: string;
  ratePerS: number;
  durationS: number;
  machines: number;
  seed: number;
}

/** What an ingester thread is told. */
export interface IngesterJob {
  role: "ingester";
  natsUrl: string;
  root: string;
  dbUrl: string;
  batchSize: number;
}

/** This thread's side of the worker channel. */
const scope = self as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(msg: unknown): void;
};
const post = (msg: unknown) => scope.postMessage(msg);

async function publish(job: PublisherJob): Promise<void> {
  const nc = await connect({ servers: job.natsUrl, name: "bench-publisher" });
  const names = fleetNames(job.root);
  const machineIds = Array.from({ length: job.machines }, (_, i) => `bm${i}`);
  const sim = createSimulatedFleet(machineIds, createSeededRandom(job.seed), () => Date.now());
  // One header set, its id replaced per message: the client encodes it on publish.
  const h = headers();
  const total = Math.round(job.ratePerS * job.durationS);
  const cpu0 = threadCpuS();
  let published = 0;
  const t0 = Date.now();
  const deadline = t0 + job.durationS * 1000 + 60_000;
  while (published < total && Date.now() < deadline) {
    const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * job.ratePerS));
    while (published < due) {
      const e = sim.next();
      published++;
      // Valid by construction, so the encoder's validation is skipped, and
      // published without waiting for each ack (the message id header still
      // dedups): the load generator should cost what separate machines would,
      // not take the CPU from what it measures. `Buffer.from` because Deno's
      // TextEncoder costs ten times as much for a payload this size.
      h.set("Nats-Msg-Id", e.id);
      nc.publish(names.event(e.machineId, e.kind), Buffer.from(JSON.stringify(e)), {
        headers: h,
      });
      if (published % 2000 === 0) await nc.flush();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const failed = 0;
  await nc.flush();
  const endMs = Date.now();
  await nc.close();
  post({
    done: {
      published,
      failed,
      publishPerS: published / ((endMs - t0) / 1000),
      t0,
      endMs,
      cpuS: threadCpuS() - cpu0,
    },
  });
}

async function ingest(job: IngesterJob): Promise<void> {
  const nc = await connect({ servers: job.natsUrl, name: "bench-ingester" });
  const db = openPostgres(job.dbUrl, { maxConnections: 2 });
  let applied = 0;
  const cpu0 = threadCpuS();
  const worker = startIngestWorker({
    db,
    nc,
    names: fleetNames(job.root),
    batchSize: job.batchSize,
    log: silentLogger,
    onBatch: (r) => {
      const now = Date.now();
      applied += r.events.length;
      post({ lags: r.events.map((e) => now - e.ts), at: now });
    },
  });
  scope.onmessage = async () => {
    await worker.stop();
    await nc.close();
    await db.close();
    post({ done: { applied, cpuS: threadCpuS() - cpu0 } });
  };
}

scope.onmessage = (e: MessageEvent) => {
  const job = e.data as PublisherJob | IngesterJob;
  (job.role === "publisher" ? publish(job) : ingest(job)).catch((err) =>
    post({ error: String(err) })
  );
};
