/**
 * The safety monitor's IO on the simulated plant: directly on a `SimPlant` in
 * the same process, or over the bus (`protocol/plant.ts`) when the monitor runs
 * in a process of its own.
 */
import type { TypedBus } from "../../bus/typed_bus.ts";
import type { Logger } from "../../log/log.ts";
import { fail } from "../../protocol/define.ts";
import { changed, type PlantSignal, type PlantSnapshot, read, set } from "../../protocol/plant.ts";
import {
  type SafetyInput,
  type SafetyInputListener,
  safetyInputs,
  type SafetyIo,
  type SafetyOutputs,
  type SafetyReading,
} from "../safety.ts";
import type { SimPlant } from "./plant.ts";

const outputSignals = ["heaterPowerCut", "armHalt"] as const satisfies readonly PlantSignal[];

function isSafetyInput(signal: PlantSignal): signal is SafetyInput {
  return (safetyInputs as readonly string[]).includes(signal);
}

/** A plant snapshot as the safety monitor's reading. */
export function readingOf(snapshot: PlantSnapshot): SafetyReading {
  const s = snapshot.signals;
  return {
    estop: s.estop ?? false,
    serviceDoorOpen: s.serviceDoorOpen ?? false,
    pickupDoorOpen: s.pickupDoorOpen ?? false,
    smoke: s.smoke ?? false,
    ovenTempC: snapshot.ovenTempC,
    storageTempC: snapshot.storageTempC,
    outputs: { heaterPowerCut: s.heaterPowerCut ?? false, armHalt: s.armHalt ?? false },
  };
}

/**
 * Safety IO wired straight to `plant`: input changes reach the listener inside
 * `plant.set`, and outputs are set before `setOutputs` returns, so a trip cuts
 * the outputs in the same call stack as the input change.
 */
export function createLocalSafetyIo(plant: SimPlant): SafetyIo {
  return {
    read: () => Promise.resolve(readingOf(plant.snapshot())),
    onInputChange(listener) {
      return plant.onChange((signal, value) => {
        if (isSafetyInput(signal)) listener(signal, value);
      });
    },
    setOutputs(outputs) {
      for (const signal of outputSignals) plant.set(signal, outputs[signal]);
    },
  };
}

/** Options of {@linkcode RemoteSafetyIo}. */
export interface RemoteSafetyIoOptions {
  /** Deadline of each plant request, in clock ms (default 2000). */
  timeoutMs?: number;
  log?: Logger;
}

/**
 * Safety IO over the bus, for a monitor in another process than the plant:
 * inputs come from `plant.changed` events (and `plant.read` polls), outputs go
 * out as `plant.set` requests for the machine of `bus`. Call `close()` when done.
 */
export class RemoteSafetyIo implements SafetyIo {
  private readonly listeners = new Set<SafetyInputListener>();
  /** The plant's signals as last heard, from events, reads and replies. */
  private readonly known = new Map<PlantSignal, boolean>();
  /** Output values requested and not yet answered, so a re-drive does not pile up. */
  private readonly pending = new Map<PlantSignal, boolean>();
  private readonly unsubscribe: () => void;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private closed = false;

  /** Starts listening to the plant of `bus.machineId`. */
  constructor(private readonly bus: TypedBus, options: RemoteSafetyIoOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.log = options.log ?? bus.ctx.log.child("safety_io");
    this.unsubscribe = bus.subscribe(changed, bus.machineId, (msg) => {
      this.known.set(msg.signal, msg.value);
      if (!isSafetyInput(msg.signal)) return;
      for (const fn of [...this.listeners]) fn(msg.signal, msg.value);
    });
  }

  /** Reads the plant over the bus. @throws {Error} When the plant does not answer. */
  async read(): Promise<SafetyReading> {
    const result = await this.bus.request(read, {}, { timeoutMs: this.timeoutMs });
    if (!result.ok) {
      throw new Error(`Plant read failed: ${result.error.code}: ${result.error.message}`);
    }
    for (const signal of outputSignals) {
      this.known.set(signal, result.value.signals[signal] ?? false);
    }
    return readingOf(result.value);
  }

  /** Listens to discrete input changes heard on the bus. */
  onInputChange(listener: SafetyInputListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a `plant.set` for each output the plant is not known to carry already. */
  setOutputs(outputs: SafetyOutputs): void {
    if (this.closed) return;
    for (const signal of outputSignals) {
      const value = outputs[signal];
      if (this.known.get(signal) === value || this.pending.get(signal) === value) continue;
      this.pending.set(signal, value);
      this.bus.request(set, { signal, value }, { timeoutMs: this.timeoutMs })
        .catch((err: unknown) => fail("INTERNAL", String(err)))
        .then((result) => {
          if (this.pending.get(signal) === value) this.pending.delete(signal);
          if (result.ok) {
            this.known.set(signal, result.value.signals[signal] ?? false);
          } else if (!this.closed) {
            this.log.log("warn", "safety output not set", {
              signal,
              value,
              code: result.error.code,
              error: result.error.message,
            });
          }
        });
    }
  }

  /** Stops listening; requests in flight still settle. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.listeners.clear();
  }
}
