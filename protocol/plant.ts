/**
 * The simulated plant's panel: what a person or a scenario does to the
 * simulated hardware (press the e-stop, fail the thermocouple), and the remote
 * IO through which an actor in another process reads inputs and drives outputs.
 */
import { z } from "zod";
import { defineCommand, defineEvent } from "./define.ts";

/** Boolean signals of the simulated plant. */
export const PlantSignal = z.enum([
  // Inputs a person or a fault causes.
  "estop",
  "serviceDoorOpen",
  "smoke",
  "thermocoupleFailed",
  "heaterFailed",
  "fridgeFailed",
  "storageDoorOpen",
  "cardReaderOffline",
  "armJam",
  /** While set, customers never take their pizza from the pickup area. */
  "customerAbsent",
  // Safety outputs, driven by the safety monitor.
  "heaterPowerCut",
  "armHalt",
  // Read-only: driven by the arm's door motor.
  "pickupDoorOpen",
]);
/** A boolean signal of the simulated plant. */
export type PlantSignal = z.infer<typeof PlantSignal>;

/** Everything the plant's sensors read now. */
export const PlantSnapshot = z.object({
  signals: z.record(PlantSignal, z.boolean()),
  ovenTempC: z.number(),
  storageTempC: z.number(),
  heaterPct: z.number(),
  /** Heater energy used since start, in watt-hours. */
  ovenEnergyWh: z.number(),
});
/** Everything the plant's sensors read now. */
export type PlantSnapshot = z.infer<typeof PlantSnapshot>;

/** Sets a signal; BAD_REQUEST for read-only ones. */
export const set = defineCommand("plant", "set", {
  signal: PlantSignal,
  value: z.boolean(),
}, PlantSnapshot);

/** Reads every sensor. */
export const read = defineCommand("plant", "read", {}, PlantSnapshot);

/** A signal changed. */
export const changed = defineEvent("plant", "changed", {
  signal: PlantSignal,
  value: z.boolean(),
});
