/**
 * `deno task cloud`: the fleet backend in one process: migrations, ingestion
 * workers, the admin API with `/sync`, and the monitor.
 *
 * Environment: DATABASE_URL (else PGlite in FORNAX_DATA, default ./data),
 * NATS_URL (else its own nats-server there), HOST, PORT (default 8090),
 * INGEST_WORKERS (default 2), OFFLINE_AFTER_S (default 600), FLEET_ROOT (default
 * `fleet`: the subjects `fleet.<machineId>.<kind>` and stream `FLEET`).
 */
import { createRealClock } from "../clock/clock.ts";
import { createLogger } from "../log/log.ts";
import { createCryptoRandom } from "../random/random.ts";
import { connectNatsBus } from "../bus/nats_bus.ts";
import { TypedBus } from "../bus/typed_bus.ts";
import { fleetNames } from "../protocol/fleet.ts";
import { ensureNats } from "../controller/nats_server.ts";
import { openDatabase } from "./db/database.ts";
import { migrateCloud } from "./db/migrations.ts";
import { ensureIngestConsumer, startIngestWorker } from "./ingest/mod.ts";
import { startMonitor } from "./monitor/monitor.ts";
import { createCloudApi } from "./api/app.ts";
import { addToken, countTokens } from "./admin/tokens.ts";
import { DataInUseError, type DataLock, lockDataDir } from "./data_lock.ts";
import { readCloudSettings, SettingsError } from "./settings.ts";

const say = (message: string) => console.error(`fornax-cloud: ${message}`);

function fatal(message: string, code = 1): never {
  say(message);
  Deno.exit(code);
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

let settings;
try {
  settings = readCloudSettings((name) => Deno.env.get(name));
} catch (err) {
  if (err instanceof SettingsError) fatal(err.message, 2);
  throw err;
}

let ownNats;
try {
  ownNats = await ensureNats(settings.natsUrl, settings.dataDir);
} catch (err) {
  fatal(errText(err));
}
if (ownNats) say(`started nats-server at ${settings.natsUrl} (JetStream on)`);

let lock: DataLock | null = null;
if (!settings.databaseUrl) {
  try {
    lock = lockDataDir(settings.dataDir, `deno task cloud (pid ${Deno.pid})`);
  } catch (err) {
    await ownNats?.stop();
    if (err instanceof DataInUseError) fatal(err.message);
    throw err;
  }
}
const db = await openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
try {
  const applied = await migrateCloud(db);
  if (applied.length) say(`schema migrated to version ${applied[applied.length - 1]}`);
} catch (err) {
  await ownNats?.stop();
  fatal(`cannot prepare the database: ${errText(err)}`);
}
say(
  settings.databaseUrl
    ? "storage: Postgres at DATABASE_URL"
    : `storage: PGlite in ${settings.dataDir}/cloud-pglite`,
);

const names = fleetNames(settings.fleetRoot);
const clock = createRealClock();
const log = createLogger({ clock, component: "cloud" });
const random = createCryptoRandom();
const raw = await connectNatsBus({ url: settings.natsUrl, clock, log, name: "fornax-cloud" });
const bus = new TypedBus(raw, { clock, random, log, machineId: "cloud" });
await ensureIngestConsumer(raw.nc, names);
const workers = Array.from(
  { length: settings.ingestWorkers },
  () => startIngestWorker({ db, nc: raw.nc, names, clock, log: log.child("ingest") }),
);
const offlineAfterMs = settings.offlineAfterS * 1000;
const monitor = startMonitor({
  db,
  nc: raw.nc,
  names,
  clock,
  log: log.child("monitor"),
  random,
  offlineAfterMs,
});
const api = createCloudApi({
  db,
  nc: raw.nc,
  bus,
  clock,
  log,
  names,
  random,
  offlineAfterMs,
  monitor,
});

if ((await countTokens(db)) === 0) {
  const first = await addToken(db, { role: "admin", name: "first-admin", random });
  say(`no tokens yet: made an admin token for you (shown once): ${first.token}`);
}

const server = Deno.serve({
  hostname: settings.hostname,
  port: settings.port,
  onListen: ({ hostname, port }) => {
    const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname;
    say(`admin API at http://${host}:${port}/api/v1/admin/machines`);
    say(`OpenAPI at http://${host}:${port}/openapi.json`);
    say(`machines sync at http://${host}:${port}/api/v1/machines/{machine_id}/sync`);
    say(`${settings.ingestWorkers} ingestion workers on stream "${names.stream}"`);
  },
}, api.fetch);

let stopping = false;
const shutdown = async () => {
  if (stopping) return;
  stopping = true;
  say("stopping");
  await server.shutdown();
  await monitor.stop();
  await Promise.all(workers.map((w) => w.stop()));
  await raw.close();
  await db.close();
  lock?.release();
  await ownNats?.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
