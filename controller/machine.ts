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
import type { ActorContext } from "../actors/actor.ts";
import type { MachineConfig } from "../protocol/config.ts";
import type { RestockLine } from "../protocol/carousel.ts";
import type { z } from "zod";
import { SimPlant } from "../hardware/sim/plant.ts";
import { servePlant } from "../hardware/sim/plant_server.ts";
import { createSimOven, type SimOven } from "../hardware/sim/oven.ts";
import { createSimCarousel } from "../hardware/sim/carousel.ts";
import { createSimArm, type SimArm } from "../hardware/sim/arm.ts";
import { createSimPayment, type SimPayment } from "../hardware/sim/payment.ts";
import { createLocalSafetyIo, RemoteSafetyIo } from "../hardware/sim/safety_io.ts";
import { startOven } from "../actors/oven/mod.ts";
import { startCarousel } from "../actors/carousel/mod.ts";
import { startArm } from "../actors/arm/mod.ts";
import { startPayment } from "../actors/payment/mod.ts";
import { startSafety } from "../actors/safety/mod.ts";
import { startOrders } from "../actors/order/mod.ts";
import { startSupervisor } from "../actors/supervisor/mod.ts";
import { createMachineApi } from "../api/app.ts";
import { type ActorHost, type ActorSpec, hostActors } from "./runner.ts";
import { defaultConfig, fullStock } from "./default_config.ts";
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
  const config = options.config ?? defaultConfig;
  const clock = createRealClock({ speed: settings.speed });
  const random = createCryptoRandom();
  const log = createLogger({ clock, ...(options.logSink ? { sink: options.logSink } : {}) });
  const runs = (part: Settings["only"][number]) => settings.only.includes(part);
  const dir = join(settings.dataDir, settings.machineId);
  await Deno.mkdir(dir, { recursive: true });
  const journal = openJournal(join(dir, "journal.db"));
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
  const ctx = (component: string): ActorContext => ({
    bus,
    clock,
    random,
    log: log.child(component),
    config,
  });
  const cleanups: Array<() => void | Promise<void>> = [];
  // A heartbeat a clock second is a thousand a wall second at --speed 1000:
  // beats never come faster than five a wall second.
  const heartbeatMs = Math.max(1000, 200 * settings.speed);

  let plant: SimPlant | null = null;
  let oven: SimOven | null = null;
  let arm: SimArm | null = null;
  let payment: SimPayment | null = null;
  let carousel: ReturnType<typeof createSimCarousel> | null = null;
  if (runs("plant")) {
    plant = new SimPlant(clock);
    oven = createSimOven(plant);
    carousel = createSimCarousel(plant, { slots: config.storageSlots });
    arm = createSimArm(plant);
    payment = createSimPayment(plant, {
      ledgerPath: join(dir, "gateway.db"),
      acceptedCents: config.acceptedCents,
      ...(options.gatewayLatencyMs !== undefined ? { latencyMs: options.gatewayLatencyMs } : {}),
    });
    cleanups.push(servePlant(bus, plant));
    cleanups.push(() => payment?.close(), () => arm?.dispose(), () => oven?.model.dispose());
  }

  const specs: ActorSpec[] = [];
  // The safety monitor starts first so that nothing moves before it watches.
  if (runs("safety")) {
    const io = plant ? createLocalSafetyIo(plant) : new RemoteSafetyIo(bus);
    if (io instanceof RemoteSafetyIo) cleanups.push(() => io.close());
    specs.push({ component: "safety", start: () => startSafety(ctx("safety"), io) });
  }
  if (runs("supervisor")) {
    specs.push({
      component: "supervisor",
      start: () => startSupervisor(ctx("supervisor"), { heartbeatTimeoutMs: 3 * heartbeatMs }),
    });
  }
  if (oven) specs.push({ component: "oven", start: () => startOven(ctx("oven"), oven!.driver) });
  if (carousel) {
    const initialStock = options.initialStock ?? fullStock(config, clock.now());
    specs.push({
      component: "carousel",
      start: () => startCarousel(ctx("carousel"), carousel!.driver, { journal, initialStock }),
    });
  }
  if (arm) specs.push({ component: "arm", start: () => startArm(ctx("arm"), arm!.driver) });
  if (payment) {
    specs.push({
      component: "payment",
      start: () => startPayment(ctx("payment"), payment!, { journal }),
    });
  }
  if (runs("order")) {
    specs.push({ component: "order", start: () => startOrders(ctx("order"), { journal }) });
  }
  const host = await hostActors(bus, clock, log.child("host"), specs, heartbeatMs);

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
    clock,
    log,
    plant,
    payment,
    journal,
    host,
    async stop() {
      if (stopped) return;
      stopped = true;
      api?.close();
      await server?.shutdown();
      await host.stop();
      for (const c of cleanups.reverse()) await c();
      await raw.close();
      journal.close();
    },
  };
}
