/** The robotic arm and pickup door: storage → oven → pickup (seed 003 §5.3, §7.1 Dispenser). */
import { z } from "zod";
import { defineCommand, defineEvent, OrderId } from "./define.ts";

/** Where the arm can be. */
export const ArmPosition = z.enum(["HOME", "STORAGE", "OVEN", "PICKUP"]);
/** Where the arm can be. */
export type ArmPosition = z.infer<typeof ArmPosition>;

/** Why the arm faulted; HALTED: safety stopped a move before it arrived. */
export const ArmFaultCode = z.enum(["JAM", "DOOR_JAM", "TIMEOUT", "HALTED"]);
/** Why the arm faulted. */
export type ArmFaultCode = z.infer<typeof ArmFaultCode>;

/** What the arm reports of itself. */
export const ArmStatus = z.object({
  state: z.string(),
  position: ArmPosition,
  /** The order whose pizza the arm carries or last placed. */
  orderId: OrderId.nullable(),
  moving: z.boolean(),
  doorOpen: z.boolean(),
  /** The pickup sensor sees a pizza in the pickup area. */
  pizzaInPickup: z.boolean(),
  /** Safety halted the arm (safety trip or open pickup door). */
  halted: z.boolean(),
  fault: z.object({ code: ArmFaultCode, message: z.string() }).nullable(),
  /** The order the pickup door is opening, open or closing for; null when it is shut. */
  doorOrderId: OrderId.nullable(),
  /**
   * Orders whose pizza was taken and whose door closed since the arm started (as
   * `taken` announces them), oldest first, the last 64: the record an order
   * checks when its `taken` event was lost.
   */
  taken: z.array(OrderId),
});
/** What the arm reports of itself. */
export type ArmStatus = z.infer<typeof ArmStatus>;

/**
 * Carries the pizza of `orderId` from `from` to `to`. The first call starts the
 * move; repeats with the same order and `to` report RUNNING or DONE. CONFLICT
 * while the door is open, safety is tripped, the arm is busy or in fault.
 */
export const move = defineCommand("arm", "move", {
  orderId: OrderId,
  from: ArmPosition,
  to: ArmPosition,
}, z.object({ status: z.enum(["RUNNING", "DONE"]), position: ArmPosition }));

/**
 * Opens the pickup door for `orderId`; it closes by itself once the pickup
 * sensor says the pizza was taken, or after the door timeout. CONFLICT when
 * the pizza of `orderId` is not in the pickup area or safety is tripped.
 */
export const openDoor = defineCommand("arm", "open_door", { orderId: OrderId }, ArmStatus);

/** Reports the arm's status. */
export const status = defineCommand("arm", "status", {}, ArmStatus);

/** Clears a jam fault after a technician freed the arm; homes it. */
export const reset = defineCommand("arm", "reset", {}, ArmStatus);

/** The arm arrived at `position` with the pizza of `orderId`. */
export const moved = defineEvent("arm", "moved", { orderId: OrderId, position: ArmPosition });

/** The pickup door opened or closed. */
export const door = defineEvent("arm", "door", { open: z.boolean(), orderId: OrderId.nullable() });

/** The pickup sensor saw the pizza of `orderId` taken and the door closed. */
export const taken = defineEvent("arm", "taken", { orderId: OrderId });

/** The arm faulted mid-move or at the door. */
export const fault = defineEvent("arm", "fault", {
  code: ArmFaultCode,
  message: z.string(),
  activeOrderId: OrderId.nullable(),
});
