/** The oven's subjects: cooking sessions, temperature, faults (seed 003 §3.8, §6.1, §6.3). */
import { z } from "zod";
import { defineCommand, defineEvent, OrderId } from "./define.ts";
import { CookingSession } from "./entities.ts";

/** The oven actor's states. */
export const OvenState = z.enum(["off", "preheating", "holding", "cooking", "cooling", "fault"]);
/** The oven actor's states. */
export type OvenState = z.infer<typeof OvenState>;

/** Why the oven went to fault. */
export const OvenFaultCode = z.enum([
  "THERMOCOUPLE_RANGE",
  "HEATING_TOO_SLOW",
  "OVER_TEMPERATURE",
  "POWER_CUT",
]);

/** A latched oven fault. */
export const OvenFault = z.object({ code: OvenFaultCode, message: z.string(), at: z.number() });

/** What the oven reports of itself. */
export const OvenStatus = z.object({
  state: OvenState,
  temperatureC: z.number(),
  targetC: z.number(),
  heaterPct: z.number().min(0).max(100),
  session: CookingSession.nullable(),
  fault: OvenFault.nullable(),
});
/** What the oven reports of itself. */
export type OvenStatus = z.infer<typeof OvenStatus>;

const TargetC = z.number().min(0).max(280);

/**
 * Starts baking `orderId` at `targetC` for `cookTimeMs` (baking time counts only
 * while the oven reads within 9 °C of target: its 10 °C band less the
 * thermocouple's 1 °C error). Idempotent per order: a repeat
 * returns the session. CONFLICT while another session runs or in fault.
 */
export const cook = defineCommand("oven", "cook", {
  orderId: OrderId,
  pizzaId: z.string().min(1),
  targetC: z.number().min(100).max(280),
  cookTimeMs: z.number().int().positive().max(30 * 60_000),
}, CookingSession);

/** Stops the session of `orderId` (heater to standby); idempotent. */
export const abort = defineCommand("oven", "abort", { orderId: OrderId }, OvenStatus);

/** Sets the standby target (0 = off); refused while cooking or in fault. */
export const preheat = defineCommand("oven", "preheat", { targetC: TargetC }, OvenStatus);

/** Reports the oven's status. */
export const status = defineCommand("oven", "status", {}, OvenStatus);

/** Leaves fault once the thermocouple reads in range; a technician's act. */
export const reset = defineCommand("oven", "reset", {}, OvenStatus);

/**
 * Temperature sample: on a move beyond the deadband (checked every 5 s), a
 * band crossing or a bad reading, and every 10 s regardless.
 */
export const temperature = defineEvent("oven", "temperature", {
  temperatureC: z.number(),
  targetC: z.number(),
  heaterPct: z.number(),
  state: OvenState,
});

/** Progress of a cooking session, every 5 s while it runs and at its end. */
export const progress = defineEvent("oven", "progress", {
  orderId: OrderId,
  sessionId: z.string(),
  temperatureC: z.number(),
  timeRemainingMs: z.number().int().nonnegative(),
  status: CookingSession.shape.status,
});

/** A session reached COMPLETE: the pizza is baked. */
export const cooked = defineEvent("oven", "cooked", { orderId: OrderId, session: CookingSession });

/** The oven faulted; the heater is already off. */
export const fault = defineEvent("oven", "fault", {
  code: OvenFaultCode,
  message: z.string(),
  temperatureC: z.number(),
  /** The order whose session the fault ended, if any. */
  activeOrderId: OrderId.nullable(),
});
