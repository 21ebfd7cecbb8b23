/**
 * The simulated machine's shared physical state: the wires between devices.
 * Sim device drivers read and drive its signals; device models register the
 * continuous sensors (oven and storage temperature) they own.
 */
import type { Clock } from "../../clock/clock.ts";
import type { PlantSignal, PlantSnapshot } from "../../protocol/plant.ts";
import { PlantSignal as PlantSignals } from "../../protocol/plant.ts";

/** A device model's continuous sensors, registered with the plant. */
export interface OvenProbe {
  temperatureC(): number;
  heaterPct(): number;
  energyWh(): number;
}

/** The storage model's sensor. */
export interface StorageProbe {
  temperatureC(): number;
}

/** Called after a signal changed. */
export type SignalListener = (signal: PlantSignal, value: boolean) => void;

/** The simulated plant: boolean signals with listeners, plus registered probes. */
export class SimPlant {
  private readonly signals = new Map<PlantSignal, boolean>(
    PlantSignals.options.map((s) => [s, false]),
  );
  private readonly listeners = new Set<SignalListener>();
  /** The signals as a record, rebuilt only after a change: the safety poll reads them twice a second. */
  private signalRecord: Readonly<Record<PlantSignal, boolean>> | null = null;
  /** Registered by the oven model. */
  oven: OvenProbe | null = null;
  /** Registered by the storage model. */
  storage: StorageProbe | null = null;

  /** Creates a plant on `clock` at `ambientC`. */
  constructor(readonly clock: Clock, readonly ambientC = 22) {}

  /** Reads a signal. */
  get(signal: PlantSignal): boolean {
    return this.signals.get(signal) ?? false;
  }

  /** Sets a signal; listeners run synchronously, only on a change. */
  set(signal: PlantSignal, value: boolean): void {
    if (this.get(signal) === value) return;
    this.signals.set(signal, value);
    this.signalRecord = null;
    for (const fn of [...this.listeners]) fn(signal, value);
  }

  /** Listens to every signal change until the returned function is called. */
  onChange(fn: SignalListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Every sensor now. */
  snapshot(): PlantSnapshot {
    return {
      signals: this.signalRecord ??= Object.freeze(
        Object.fromEntries(this.signals) as Record<PlantSignal, boolean>,
      ),
      ovenTempC: this.oven?.temperatureC() ?? this.ambientC,
      storageTempC: this.storage?.temperatureC() ?? this.ambientC,
      heaterPct: this.oven?.heaterPct() ?? 0,
      ovenEnergyWh: this.oven?.energyWh() ?? 0,
    };
  }
}
