/**
 * The machine's actors on any bus and clock: the controller process runs this
 * on NATS and wall time, the simulator on its own bus and virtual time. The
 * simulated hardware is built apart so that it can outlive a controller (a
 * power loss of the computer does not empty the carousel).
 */
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { Random } from "../random/random.ts";
import type { Journal } from "../journal/journal.ts";
import type { ActorContext } from "../actors/actor.ts";
import type { MachineConfig } from "../protocol/config.ts";
import type { RestockLine } from "../protocol/carousel.ts";
import { SimPlant } from "../hardware/sim/plant.ts";
import { servePlant } from "../hardware/sim/plant_server.ts";
import { createSimOven, type SimOven } from "../hardware/sim/oven.ts";
import { createSimCarousel, type SimCarousel } from "../hardware/sim/carousel.ts";
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
import { startSync } from "../actors/sync/mod.ts";
import type { NatsConnection } from "@nats-io/transport-node";
import { type ActorHost, type ActorSpec, defaultHeartbeatMs, hostActors } from "./runner.ts";
import { fullStock } from "./default_config.ts";
import type { Part } from "./settings.ts";
import type { z } from "zod";

/** The simulated hardware of one machine. */
export interface SimHardware {
  plant: SimPlant;
  oven: SimOven;
  carousel: SimCarousel;
  arm: SimArm;
  payment: SimPayment;
  /** Stops the devices' timers and closes the gateway ledger. */
  dispose(): void;
}

/** Options of {@linkcode createSimHardware}. */
export interface SimHardwareOptions {
  /** SQLite file of the simulated gateway's ledger (default: in memory). */
  ledgerPath?: string;
  /** Clock ms the simulated gateway takes per answer. */
  gatewayLatencyMs?: number;
  /** Draws the oven thermocouple's noise (default: exact readings). */
  random?: Random;
}

/** Builds the simulated plant and its devices on `clock`. */
export function createSimHardware(
  clock: Clock,
  config: MachineConfig,
  options: SimHardwareOptions = {},
): SimHardware {
  const plant = new SimPlant(clock);
  const oven = createSimOven(
    plant,
    options.random ? { thermocouple: { random: options.random } } : {},
  );
  const carousel = createSimCarousel(plant, { slots: config.storageSlots });
  const arm = createSimArm(plant);
  const payment = createSimPayment(plant, {
    ...(options.ledgerPath ? { ledgerPath: options.ledgerPath } : {}),
    acceptedCents: config.acceptedCents,
    ...(options.gatewayLatencyMs !== undefined ? { latencyMs: options.gatewayLatencyMs } : {}),
  });
  return {
    plant,
    oven,
    carousel,
    arm,
    payment,
    dispose() {
      payment.close();
      arm.dispose();
      oven.model.dispose();
      carousel.model.dispose();
    },
  };
}

/** What {@linkcode assembleMachine} needs. */
export interface AssemblyOptions {
  bus: TypedBus;
  clock: Clock;
  random: Random;
  log: Logger;
  config: MachineConfig;
  journal: Journal;
  /** The parts this process runs. */
  parts: readonly Part[];
  /** The simulated hardware, required when a hardware-bound part runs here. */
  hardware: SimHardware | null;
  /** What a new carousel is loaded with (default: every slot, five days' shelf life). */
  initialStock?: z.infer<typeof RestockLine>[];
  /** Clock ms between heartbeats (default 1000). */
  heartbeatMs?: number;
  /** The NATS connection whose JetStream the sync actor feeds; without it, no sync. */
  nats?: NatsConnection;
  /** Where actors read the config in force, when it can change while they run. */
  currentConfig?: () => MachineConfig;
}

/** The actors of one process, and the plant's panel when the plant is here. */
export interface Assembly {
  host: ActorHost;
  /** Stops the actors and the plant's panel; the hardware stays as it is. */
  stop(): Promise<void>;
}

/**
 * Starts the actors of `parts` on `bus`. The safety monitor starts first, so
 * that nothing moves before it watches.
 *
 * @throws {RangeError} When a hardware-bound part runs without `hardware`.
 */
export async function assembleMachine(o: AssemblyOptions): Promise<Assembly> {
  const { bus, clock, random, log, config, journal } = o;
  const runs = (part: Part) => o.parts.includes(part);
  const heartbeatMs = o.heartbeatMs ?? defaultHeartbeatMs;
  const currentConfig = o.currentConfig ?? (() => config);
  // Each actor names its own logger (ctx.log.child("oven")); `config` is read
  // through, so a config the cloud pushes reaches the next read.
  const ctx = (): ActorContext => ({
    bus,
    clock,
    random,
    log,
    get config() {
      return currentConfig();
    },
  });
  const hw = o.hardware;
  const needHw = (part: Part): SimHardware => {
    if (!hw) throw new RangeError(`Part "${part}" needs the simulated hardware in its process`);
    return hw;
  };
  const cleanups: Array<() => void> = [];
  if (runs("plant")) cleanups.push(servePlant(bus, needHw("plant").plant));

  const specs: ActorSpec[] = [];
  if (runs("safety")) {
    const io = hw ? createLocalSafetyIo(hw.plant) : new RemoteSafetyIo(bus);
    if (io instanceof RemoteSafetyIo) cleanups.push(() => io.close());
    specs.push({ component: "safety", start: () => startSafety(ctx(), io) });
  }
  // The sync actor starts before the others so their first events reach the outbox.
  if (runs("sync") && o.nats) {
    const nc = o.nats;
    specs.push({ component: "sync", start: () => startSync(ctx(), { journal, nc }) });
  }
  if (runs("supervisor")) {
    specs.push({
      component: "supervisor",
      start: () => startSupervisor(ctx(), { heartbeatTimeoutMs: 3 * heartbeatMs }),
    });
  }
  if (runs("oven")) {
    const { oven } = needHw("oven");
    specs.push({ component: "oven", start: () => startOven(ctx(), oven.driver) });
  }
  if (runs("carousel")) {
    const { carousel } = needHw("carousel");
    const initialStock = o.initialStock ?? fullStock(config, clock.now());
    specs.push({
      component: "carousel",
      start: () => startCarousel(ctx(), carousel.driver, { journal, initialStock }),
    });
  }
  if (runs("arm")) {
    const { arm } = needHw("arm");
    specs.push({ component: "arm", start: () => startArm(ctx(), arm.driver, { journal }) });
  }
  if (runs("payment")) {
    const { payment } = needHw("payment");
    specs.push({
      component: "payment",
      start: () => startPayment(ctx(), payment, { journal }),
    });
  }
  if (runs("order")) {
    specs.push({ component: "order", start: () => startOrders(ctx(), { journal }) });
  }
  const host = await hostActors(bus, clock, log.child("host"), specs, heartbeatMs);
  return {
    host,
    async stop() {
      await host.stop();
      for (const c of cleanups.reverse()) c();
    },
  };
}
