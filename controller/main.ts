/**
 * `deno task start`: one pizza machine with simulated hardware.
 *
 * Environment: NATS_URL, MACHINE_ID, PORT, TECH_TOKEN, FORNAX_DATA.
 * Flags: --speed N (simulated time runs N times faster), --only part,...
 */
import { readSettings, SettingsError } from "./settings.ts";
import { ensureNats } from "./nats_server.ts";
import { startMachine } from "./machine.ts";
import { ensureFleetStreams } from "../cloud/ingest/stream.ts";
import { fleet } from "../protocol/fleet.ts";

function fatal(message: string): never {
  console.error(`fornax: ${message}`);
  Deno.exit(2);
}

let settings;
try {
  settings = readSettings(Deno.args, (name) => Deno.env.get(name));
} catch (err) {
  if (err instanceof SettingsError) fatal(err.message);
  throw err;
}

let ownNats;
try {
  ownNats = await ensureNats(settings.natsUrl, settings.dataDir);
} catch (err) {
  fatal(err instanceof Error ? err.message : String(err));
}
if (ownNats) console.error(`fornax: started nats-server at ${settings.natsUrl} (JetStream on)`);

const machine = await startMachine(settings);
// A machine alone with its own nats-server has no cloud to create the fleet
// stream: create it, so the sync outbox drains instead of growing.
if (ownNats) await ensureFleetStreams(machine.nc, fleet);
console.error(
  `fornax: machine ${settings.machineId} running [${
    settings.only.join(", ")
  }] at speed ${settings.speed}`,
);
if (machine.apiUrl) {
  console.error(`fornax: API at ${machine.apiUrl}/api/v1/machine/${settings.machineId}/menu`);
  console.error(`fornax: kiosk at ${machine.apiUrl}/`);
  if (!settings.techToken) console.error(`fornax: generated TECH_TOKEN=${machine.techToken}`);
}

const shutdown = async () => {
  console.error("fornax: stopping");
  await machine.stop();
  await ownNats?.stop();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
