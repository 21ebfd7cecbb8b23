/**
 * The safety monitor: watches the hardwired chain, latches trips, cuts heater
 * power and halts the arm through its own outputs, clears only on a reset.
 */
import { z } from "zod";
import { defineCommand, defineEvent } from "./define.ts";

/** What can trip the machine. */
export const TripCause = z.enum([
  "ESTOP",
  "SERVICE_DOOR",
  "OVEN_OVER_TEMPERATURE",
  "SMOKE",
  "STORAGE_DANGER_ZONE",
]);
/** What can trip the machine. */
export type TripCause = z.infer<typeof TripCause>;

/** The safety monitor's state. */
export const SafetyStatus = z.object({
  tripped: z.boolean(),
  /** Causes latched since the last reset. */
  causes: z.array(TripCause),
  /** Causes whose input is active right now. */
  activeInputs: z.array(TripCause),
  latchedAt: z.number().nullable(),
  heaterPowerCut: z.boolean(),
  armHalted: z.boolean(),
  pickupDoorOpen: z.boolean(),
});
/** The safety monitor's state. */
export type SafetyStatus = z.infer<typeof SafetyStatus>;

/** Reports the safety state. */
export const status = defineCommand("safety", "status", {}, SafetyStatus);

/** A technician's reset; CONFLICT while any cause's input is still active. */
export const reset = defineCommand("safety", "reset", {
  performedBy: z.string().min(1).max(100),
}, SafetyStatus);

/** A trip latched: heater power is cut and the arm halted. */
export const tripped = defineEvent("safety", "tripped", {
  causes: z.array(TripCause),
  latchedAt: z.number(),
});

/** The safety state, on every change and every 15 s. */
export const state = defineEvent("safety", "state", { status: SafetyStatus });
