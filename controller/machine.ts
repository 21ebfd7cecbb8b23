/**
 * One machine's controller process: connects the bus, builds the simulated
 * plant and its drivers, hosts the actors this process runs (`--only`), and
 * serves the HTTP API. `main.ts` adds the command line around it; tests start
 * it in-process.
 */
import { join } from "node:path";
import { connectNatsBus, type NatsBus } from "../bus/nats_bus.ts";
import { TypedBus } from "../bus/typed_bus.ts";
import { createRealClock } from "../clock/clock.ts";
import { createLogger, type Logger, type LogSink } from "../log/log.ts";
import { createCryptoRandom } from "../random/random.ts";
import { type Journal, openJournal } from "../journal/journal.ts";
import type { MachineConfig } from "../protocol/config.ts";
import type { RestockLine } from "../protocol/carousel.ts";
import type { z } from "zod";
import { createMachineApi } from "../api/app.ts";
import { type ActorHost, defaultHeartbeatMs } from "./runner.ts";
import { defaultConfig } from "./default_config.ts";
import { assembleMachine, createSimHardware } from "./assemble.ts";
import { ConfigStore } from "./config_store.ts";
import { serveConfig } from "./config_service.ts";
import type { SimPlant } from "../hardware/sim/plant.ts";
import type { SimPayment } from "../hardware/sim/payment.ts";
import type { Settings } from "./settings.ts";

/** Options of {@linkcode startMachine} beyond the settings. */
export interface MachineOptions {
  config?: MachineConfig;
  /** Where log lines go (default: stderr). */
  logSink?: LogSink;
  /** Clock ms the simulated gateway takes per answer. */
  gatewayLatencyMs?: number;
  /** What a new carousel is loaded with (default: every slot, five days' shelf life). */
  initialStock?: z.infer<typeof RestockLine>[];
}

/** A running controller process. */
export interface RunningMachine {
  settings: Settings;
  techToken: string;
  /** Where the HTTP API listens, when this process serves it. */
  apiUrl: string | null;
  bus: TypedBus;
  /** The NATS connection (for JetStream). */
  nc: NatsBus["nc"];
  clock: ReturnType<typeof createRealClock>;
  log: Logger;
  /** The simulated plant, when this process hosts it. */
  plant: SimPlant | null;
  /** The simulated payment hardware, when hosted here (tests read its ledger). */
  payment: SimPayment | null;
  journal: Journal;
  host: ActorHost;
  stop(): Promise<void>;
}

/** Starts a controller process for `settings`. */
export async function startMachine(
  settings: Settings,
  options: MachineOptions = {},
): Promise<RunningMachine> {
  const fallbackConfig = options.config ?? defaultConfig;
  const clock = createRealClock({ speed: settings.speed });
  const random = createCryptoRandom();
  const log = createLogger({ clock, ...(options.logSink ? { sink: options.logSink } : {}) });
  const runs = (part: Settings["only"][number]) => settings.only.includes(part);
  const dir = join(settings.dataDir, settings.machineId);
  await Deno.mkdir(dir, { recursive: true });
  const journal = openJournal(join(dir, "journal.db"));
  const configs = new ConfigStore(journal, fallbackConfig);
  const config = configs.current();
  const techToken = settings.techToken ?? random.uuid().replaceAll("-", "");

  const raw: NatsBus = await connectNatsBus({
    url: settings.natsUrl,
    clock,
    log: log.child("bus"),
    name: `fornax-${settings.machineId}`,
  });
  const bus = new TypedBus(raw, {
    clock,
    random,
    log: log.child("bus"),
    machineId: settings.machineId,
  });
  // Beats never come faster than five a wall second, whatever the speed.
  const heartbeatMs = Math.max(defaultHeartbeatMs, 200 * settings.speed);
  const hardware = runs("plant")
    ? createSimHardware(clock, config, {
      ledgerPath: join(dir, "gateway.db"),
      random,
      ...(options.gatewayLatencyMs !== undefined
        ? { gatewayLatencyMs: options.gatewayLatencyMs }
        : {}),
    })
    : null;
  const assembly = await assembleMachine({
    bus,
    clock,
    random,
    log,
    config,
    journal,
    parts: settings.only,
    hardware,
    nats: raw.nc,
    currentConfig: () => configs.current(),
    heartbeatMs,
    ...(options.initialStock ? { initialStock: options.initialStock } : {}),
  });

  const stopConfigService = serveConfig(bus, configs, clock, settings.only.includes("sync"));

  let apiUrl: string | null = null;
  let server: Deno.HttpServer | null = null;
  let api: ReturnType<typeof createMachineApi> | null = null;
  if (runs("api")) {
    api = createMachineApi({
      bus,
      clock,
      machineId: settings.machineId,
      techToken,
      log: log.child("api"),
    });
    const listening = Promise.withResolvers<Deno.NetAddr>();
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: settings.port,
      onListen: (addr) => listening.resolve(addr as Deno.NetAddr),
    }, api.fetch);
    const addr = await listening.promise;
    apiUrl = `http://127.0.0.1:${addr.port}`;
  }

  let stopped = false;
  return {
    settings,
    techToken,
    apiUrl,
    bus,
    nc: raw.nc,
    clock,
    log,
    plant: hardware?.plant ?? null,
    payment: hardware?.payment ?? null,
    journal,
    host: assembly.host,
    async stop() {
      if (stopped) return;
      stopped = true;
      api?.close();
      await server?.shutdown();
      stopConfigService();
      await assembly.stop();
      hardware?.dispose();
      await raw.close();
      journal.close();
    },
  };
}
