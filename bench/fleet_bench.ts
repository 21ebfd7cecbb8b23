/**
 * Figures of the cloud: events per second sustained from JetStream into the
 * database with the ingestion lag (commit time − event time) p50/p99, and
 * `/sync` requests per second with their latency for seed 000's payload; on
 * Postgres and on PGlite. Simulated machines publish a realistic mix straight
 * to JetStream (loopback, the shared nats-server, a stream of the bench's own,
 * deleted after). Every loop is bounded in count and time.
 *
 *   deno run -A bench/fleet_bench.ts [--backend postgres|pglite|both]
 *     [--rate 20000] [--seconds 15] [--machines 10000] [--workers 2] [--batch 2000]
 *     [--sync-seconds 5] [--sync-clients 32] [--drain 200000] [--warmup 5]
 *     [--pglite-rate 5000]
 *
 * Lag counts from the end of the warm-up (`--warmup` s); the sustained rate
 * is what was committed from then until the load generator stopped. Two
 * workers with batches of 2000 cost the least CPU per event on this 2-core
 * machine (each fetches its next batch while one commits).
 * Each ingest run also prints the CPU time per event of its parts (Linux
 * only): the ingestion workers' threads, the database's Postgres backends, the
 * nats-server (shared: it counts whatever else uses it) and the load
 * generator, with the load average, since other work on the machine moves the
 * rates but hardly the CPU per event.
 */
import { parseArgs } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { silentLogger } from "../log/log.ts";
import { type FleetNames, fleetNames } from "../protocol/fleet.ts";
import { type Database, openPglite, openPostgres } from "../cloud/db/database.ts";
import { migrateCloud } from "../cloud/db/migrations.ts";
import { createPostgresDatabase } from "../cloud/db/test_databases.ts";
import {
  deleteFleetStreams,
  ensureIngestConsumer,
  type IngestWorker,
  startIngestWorker,
} from "../cloud/ingest/mod.ts";
import { addMachine, createSyncApi } from "../cloud/sync_api.ts";
import { natsServerPid, PostgresCpu, processCpuS, threadCpuS } from "./fleet_bench_cpu.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "both" },
    rate: { type: "string", default: "20000" },
    seconds: { type: "string", default: "15" },
    machines: { type: "string", default: "10000" },
    workers: { type: "string", default: "2" },
    batch: { type: "string", default: "2000" },
    "sync-seconds": { type: "string", default: "5" },
    "sync-clients": { type: "string", default: "32" },
    drain: { type: "string", default: "200000" },
    warmup: { type: "string", default: "5" },
    "pglite-rate": { type: "string", default: "5000" },
  },
});
const natsUrl = Deno.env.get("NATS_URL") ?? "nats://127.0.0.1:4222";
const ratePerS = Number(args.values.rate);
const seconds = Number(args.values.seconds);
const machineCount = Number(args.values.machines);
const workerCount = Number(args.values.workers);
const batchSize = Number(args.values.batch);
const syncSeconds = Number(args.values["sync-seconds"]);
const syncClients = Number(args.values["sync-clients"]);
const drainCount = Number(args.values.drain);
const warmupS = Number(args.values.warmup);
const pgliteRate = Number(args.values["pglite-rate"]);

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);

interface IngestFigures {
  published: number;
  stored: number;
  eventsPerS: number;
  publishPerS: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
  /** CPU seconds of each part over the run (NaN where unknown). */
  cpuS: { ingest: number; postgres: number; nats: number; publisher: number; runtime: number };
  /** The 1-minute load average before and after. */
  load: [number, number];
}

/** The 1-minute load average, or NaN. */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** Resolves with the first `done` message of `w`; lags and errors go to the callbacks. */
function runThread<T>(w: Worker, onLags?: (lags: number[], at: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    w.onmessage = (e: MessageEvent) => {
      if (e.data.lags) onLags?.(e.data.lags, e.data.at);
      else if (e.data.done) resolve(e.data.done as T);
      else if (e.data.error) reject(new Error(e.data.error));
    };
    w.onerror = (e) => reject(new Error(e.message));
  });
}

const threadUrl = new URL("./fleet_bench_threads.ts", import.meta.url).href;

/**
 * The simulated fleet publishes at `rate` events/s for `durationS` seconds (in
 * a thread of its own) while `workers` ingest: in threads of their own on
 * Postgres (`dbUrl`), in this thread on PGlite (`db`, one connection). With
 * `preload`, everything is published first and the workers then drain the
 * backlog: their capacity, whatever the publisher's.
 */
async function ingestRun(
  db: Database,
  dbUrl: string | null,
  names: FleetNames,
  rate: number,
  durationS: number,
  workers: number,
  seed: number,
  preload = false,
): Promise<IngestFigures> {
  const load0 = loadAverage();
  const pgCpu = dbUrl ? new PostgresCpu(db) : null;
  const natsPid = natsServerPid(natsUrl);
  let natsCpu0 = natsPid ? processCpuS(natsPid) : NaN;
  // Lag samples with the commit time of their batch.
  const allLags: number[] = [];
  const commits: number[] = [];
  let lastCommitMs = 0;
  const timeline = new Map<number, number>();
  const onLags = (l: number[], at: number) => {
    for (const x of l) {
      allLags.push(x);
      commits.push(at);
    }
    lastCommitMs = Math.max(lastCommitMs, at);
    const second = Math.floor(at / 1000);
    timeline.set(second, Math.max(timeline.get(second) ?? 0, ...l));
  };
  type Published = {
    published: number;
    failed: number;
    publishPerS: number;
    t0: number;
    endMs: number;
    cpuS: number;
  };
  const publish = async () => {
    const publisher = new Worker(threadUrl, { type: "module" });
    const publishing = runThread<Published>(publisher);
    publisher.postMessage({
      role: "publisher",
      natsUrl,
      root: names.root,
      ratePerS: rate,
      durationS,
      machines: machineCount,
      seed,
    });
    const pub = await publishing;
    publisher.terminate();
    return pub;
  };
  let pub = preload ? await publish() : null;
  // A preloaded backlog was published before: the drain costs NATS only its delivery.
  if (preload && natsPid) natsCpu0 = processCpuS(natsPid);
  const startMs = Date.now();
  const mainCpu0 = threadCpuS();
  const processCpu0 = processCpuS(Deno.pid);
  // Backends are sampled all along: one's time is lost with it when it exits.
  let sampling = Promise.resolve();
  const sampler = pgCpu
    ? setInterval(() => sampling = sampling.then(() => pgCpu.sample()), 250)
    : undefined;
  const threads: Worker[] = [];
  const finished: Promise<{ cpuS: number }>[] = [];
  const local: IngestWorker[] = [];
  const localNcs: NatsConnection[] = [];
  for (let i = 0; i < workers; i++) {
    if (dbUrl) {
      const w = new Worker(threadUrl, { type: "module" });
      threads.push(w);
      finished.push(runThread(w, onLags));
      w.postMessage({ role: "ingester", natsUrl, root: names.root, dbUrl, batchSize });
    } else {
      const nc = await connect({ servers: natsUrl, name: `bench-worker-${i}` });
      localNcs.push(nc);
      local.push(startIngestWorker({
        db,
        nc,
        names,
        batchSize,
        log: silentLogger,
        onBatch: (r) => {
          const now = Date.now();
          onLags(r.events.map((e) => now - e.ts), now);
        },
      }));
    }
  }
  pub ??= await publish();
  // Drained when the consumer has nothing pending or unacknowledged.
  const nc = await connect({ servers: natsUrl, name: "bench-watch" });
  const jsm = await jetstreamManager(nc);
  for (let i = 0; i < 1800; i++) {
    const info = await jsm.consumers.info(names.stream, "ingest");
    if (info.num_pending === 0 && info.num_ack_pending === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await nc.close();
  clearInterval(sampler);
  await sampling;
  await pgCpu?.sample();
  const natsCpuS = natsPid ? processCpuS(natsPid) - natsCpu0 : NaN;
  for (const w of threads) w.postMessage({ stop: true });
  const mainCpuS = threadCpuS() - mainCpu0;
  const ingestCpuS = dbUrl
    ? (await Promise.all(finished)).reduce((sum, f) => sum + f.cpuS, 0)
    : mainCpuS;
  // What no thread of ours did: V8's garbage collection and the runtime's own threads.
  const runtimeCpuS = processCpuS(Deno.pid) - processCpu0 - (dbUrl ? mainCpuS : 0) -
    ingestCpuS - (preload ? 0 : pub.cpuS);
  for (const w of threads) w.terminate();
  await Promise.all(local.map((w) => w.stop()));
  for (const c of localNcs) await c.close();
  // Figures from after the warm-up (connections, JIT, first sight of each machine).
  const fromMs = (preload ? startMs : pub.t0) + (preload ? 0 : warmupS * 1000);
  const lags = allLags.filter((_, i) => commits[i]! >= fromMs).sort((a, b) => a - b);
  if (Deno.env.get("BENCH_TIMELINE")) {
    const first = Math.min(...timeline.keys());
    console.log(
      "max lag per second:",
      [...timeline.entries()].sort(([a], [b]) => a - b).map(([t, l]) => `${t - first}s:${l}`)
        .join(" "),
    );
  }
  return {
    published: pub.published,
    stored: allLags.length,
    // Live: what was committed while the load was on, after the warm-up (the
    // last events, published after the final fetch began, wait out its expiry).
    // Drained: everything, until the last commit.
    eventsPerS: preload
      ? lags.length / ((lastCommitMs - fromMs) / 1000)
      : commits.filter((c) => c >= fromMs && c <= pub.endMs).length /
        ((pub.endMs - fromMs) / 1000),
    publishPerS: pub.publishPerS,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lagMaxMs: lags.at(-1) ?? NaN,
    cpuS: {
      ingest: ingestCpuS,
      postgres: pgCpu ? pgCpu.take() : NaN,
      nats: natsCpuS,
      publisher: preload ? NaN : pub.cpuS,
      runtime: runtimeCpuS,
    },
    load: [load0, loadAverage()],
  };
}

/** The CPU line of an ingest run: µs per stored event of each part. */
function cpuLine(tag: string, r: IngestFigures, ingestLabel: string): string | null {
  const per = (s: number) => (s * 1e6) / r.stored;
  const parts = [
    [r.cpuS.ingest, ingestLabel],
    [r.cpuS.runtime, "V8 GC and runtime threads"],
    [r.cpuS.postgres, "Postgres backends"],
    [r.cpuS.nats, "nats-server"],
    [r.cpuS.publisher, "load generator"],
  ] as const;
  const known = parts.filter(([s]) => Number.isFinite(s));
  if (!known.length) return null;
  return `${tag} cpu     per event: ` +
    known.map(([s, name]) => `${name} ${f1(per(s))} µs`).join(", ") +
    ` (load average ${r.load[0].toFixed(1)} → ${r.load[1].toFixed(1)})`;
}

interface SyncFigures {
  requests: number;
  errors: number;
  perS: number;
  p50Ms: number;
  p99Ms: number;
}

/** `syncClients` clients post seed-000 batches (2 sales each) for `durationS` seconds. */
async function syncRun(db: Database, names: FleetNames, durationS: number): Promise<SyncFigures> {
  const nc = await connect({ servers: natsUrl, name: "bench-sync" });
  const workerNc = await connect({ servers: natsUrl, name: "bench-sync-worker" });
  const worker = startIngestWorker({ db, nc: workerNc, names, batchSize, log: silentLogger });
  const app = createSyncApi({ db, nc, names, log: silentLogger });
  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: (a) => listening.resolve(a as Deno.NetAddr),
  }, app.fetch);
  const addr = await listening.promise;
  const keys = await Promise.all(
    Array.from({ length: syncClients }, (_, i) => addMachine(db, `vm${i}`)),
  );
  const samples: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  await Promise.all(keys.map(async (key, i) => {
    for (let n = 0; n < 100_000 && performance.now() < end; n++) {
      const ts = new Date(Date.UTC(2025, 9, 12, 10, 0, 0) + n * 60_000).toISOString();
      const body = {
        last_sync_ts: ts,
        config_version: "v1.2",
        transactions: [
          { ts, item_id: "101", price_paid: 1.5 },
          { ts, item_id: "102", price_paid: 1.0 },
        ],
        inventory_levels: { "101": 3, "102": 8 },
      };
      const s = performance.now();
      const res = await fetch(`http://127.0.0.1:${addr.port}/api/v1/machines/vm${i}/sync`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      samples.push(performance.now() - s);
      if (res.status !== 200) errors++;
    }
  }));
  const elapsedS = (performance.now() - t0) / 1000;
  await server.shutdown();
  await worker.stop();
  await nc.close();
  await workerNc.close();
  samples.sort((a, b) => a - b);
  return {
    requests: samples.length,
    errors,
    perS: samples.length / elapsedS,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
  };
}

async function benchBackend(backend: "postgres" | "pglite") {
  let db: Database;
  let dbUrl: string | null = null;
  let cleanup: () => Promise<void>;
  if (backend === "postgres") {
    const created = await createPostgresDatabase();
    const pg = openPostgres(created.url, { maxConnections: workerCount + 4 });
    db = pg;
    dbUrl = created.url;
    cleanup = async () => {
      await pg.close();
      await created.drop();
    };
  } else {
    const dir = await Deno.makeTempDir({ prefix: "fornax-bench-pglite-" });
    const pg = await openPglite(dir);
    db = pg;
    cleanup = async () => {
      await pg.close();
      await Deno.remove(dir, { recursive: true });
    };
  }
  const nc = await connect({ servers: natsUrl, name: "bench-admin" });
  const names = fleetNames(`bench${crypto.randomUUID().replaceAll("-", "").slice(0, 8)}`);
  try {
    await migrateCloud(db);
    // A fleet that runs: its machines are registered and were seen lately.
    await db.query(
      `INSERT INTO machines (machine_id, registered, last_seen_at)
       SELECT 'bm' || g, true, now() FROM generate_series(0, $1::int - 1) AS g`,
      [machineCount],
    );
    await ensureIngestConsumer(nc, names, { maxAckPending: 50_000 });
    // PGlite is one connection in this process: its workers share this thread.
    const rate = backend === "pglite" ? Math.min(ratePerS, pgliteRate) : ratePerS;
    const workers = backend === "pglite" ? 2 : workerCount;
    const tag = backend.padEnd(8);
    // PGlite runs in this thread, its workers with it.
    const ingestLabel = backend === "pglite" ? "ingest workers with PGlite" : "ingest workers";
    const r = await ingestRun(db, dbUrl, names, rate, seconds, workers, 1);
    console.log(
      `${tag} ingest  offered ${f0(rate)}/s for ${seconds} s, ${workers} workers, ` +
        `batch ${batchSize}, ${f0(machineCount)} machines: published ${f0(r.published)} ` +
        `(${f0(r.publishPerS)}/s), stored ${f0(r.stored)}; sustained ${f0(r.eventsPerS)} ` +
        `events/s while offered, after a ${warmupS} s warm-up; lag p50 ${f0(r.lagP50Ms)} ms, ` +
        `p99 ${f0(r.lagP99Ms)} ms, ` +
        `max ${f0(r.lagMaxMs)} ms`,
    );
    const cpu = cpuLine(tag, r, ingestLabel);
    if (cpu) console.log(cpu);
    if (drainCount > 0) {
      const count = backend === "pglite" ? Math.round(drainCount / 4) : drainCount;
      const d = await ingestRun(db, dbUrl, names, 100_000, count / 100_000, workers, 2, true);
      console.log(
        `${tag} drain   backlog of ${f0(d.published)} events, ${workers} workers: ` +
          `${f0(d.stored)} stored at ${f0(d.eventsPerS)} events/s`,
      );
      const cpu = cpuLine(tag, d, ingestLabel);
      if (cpu) console.log(cpu);
    }
    const jsm = await jetstreamManager(nc);
    const pending = (await jsm.consumers.info(names.stream, "ingest")).num_pending;
    if (pending) console.log(`${backend.padEnd(8)} ingest  ${f0(pending)} events left unconsumed`);
    const s = await syncRun(db, names, syncSeconds);
    console.log(
      `${backend.padEnd(8)} /sync   ${syncClients} clients, ${syncSeconds} s: ${f0(s.requests)} ` +
        `requests (${s.errors} errors), ${f0(s.perS)} req/s, ` +
        `p50 ${f1(s.p50Ms)} ms, p99 ${f1(s.p99Ms)} ms`,
    );
  } finally {
    await deleteFleetStreams(nc, names);
    await nc.close();
    await cleanup();
  }
}

const chosen = args.values.backend === "both"
  ? (["postgres", "pglite"] as const)
  : [args.values.backend as "postgres" | "pglite"];
for (const backend of chosen) await benchBackend(backend);
