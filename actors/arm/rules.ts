/**
 * Why the arm refuses a command, as one sentence naming the values. The host
 * uses these for its CONFLICT replies and the machine's guards use the same
 * rules, so a reply never disagrees with what the machine does.
 */
import type { ArmFaultCode, ArmPosition } from "../../protocol/arm.ts";
import type { ArmSensors } from "../../hardware/arm.ts";

/** A latched fault. */
export interface ArmFault {
  code: ArmFaultCode;
  message: string;
}

/** One stroke of the drive, supervised by its own deadline. */
export interface ArmLeg {
  to: ArmPosition;
  nominalMs: number;
}

/** A move the arm runs: the order's pizza (null when homing) along `legs`. */
export interface ArmMove {
  orderId: string | null;
  from: ArmPosition;
  to: ArmPosition;
  /** Strokes the drive makes in turn; empty when the arm is already at `to`. */
  legs: ArmLeg[];
  /** Index of the running leg. */
  leg: number;
}

/** What the rules read of the arm's context. */
export interface ArmFacts {
  position: ArmPosition;
  positionKnown: boolean;
  sensors: ArmSensors;
  safetyTripped: boolean;
  safetyCauses: string[];
  fault: ArmFault | null;
  /** Orders whose pizza the arm placed in the pickup area and that were not taken. */
  placed: string[];
  /** Orders whose pizza was taken (bounded history). */
  taken: string[];
  pickupBays: number;
}

/** Why safety forbids motion or the door now, or null. */
export function haltReason(facts: ArmFacts): string | null {
  if (facts.safetyTripped) {
    const causes = facts.safetyCauses.length ? facts.safetyCauses.join(", ") : "unknown cause";
    return `safety is tripped (${causes})`;
  }
  if (facts.sensors.halted) {
    return facts.sensors.doorOpen
      ? "the pickup door is open (safety halt output asserted)"
      : "the safety halt output is asserted";
  }
  return null;
}

/** The drive positions a move from `position` via `from` to `to` visits. */
export function planLegs(position: ArmPosition, from: ArmPosition, to: ArmPosition): ArmPosition[] {
  const legs: ArmPosition[] = [];
  let at = position;
  for (const next of [from, to]) {
    if (next !== at) legs.push(next);
    at = next;
  }
  return legs;
}

/** Why a new move of `req` cannot start in an idle arm, or null. */
export function moveRefusal(
  facts: ArmFacts,
  req: { orderId: string; from: ArmPosition; to: ArmPosition },
): string | null {
  if (facts.fault) {
    return `Arm is in fault ${facts.fault.code} (${facts.fault.message}); reset it first`;
  }
  const halt = haltReason(facts);
  if (halt) return `Arm cannot move: ${halt}`;
  if (facts.sensors.doorOpen) return "Arm cannot move while the pickup door is open";
  if (!facts.positionKnown) return "Arm position is unknown; reset it to home it";
  if (req.from !== facts.position && facts.position !== "HOME") {
    return `Arm is at "${facts.position}", not at "${req.from}"`;
  }
  if (req.to === "PICKUP" && !facts.placed.includes(req.orderId)) {
    // The sensor counts too: pizzas placed before a restart are in no list any more.
    const waiting = Math.max(facts.placed.length, facts.sensors.pizzasInPickup);
    if (waiting >= facts.pickupBays) {
      return `Pickup area is full: ${waiting} of ${facts.pickupBays} bays hold pizzas ` +
        `(orders ${facts.placed.map((o) => `"${o}"`).join(", ")})`;
    }
  }
  return null;
}

/** Why the door cannot open for `orderId` in an arm at rest, or null. */
export function doorRefusal(facts: ArmFacts, orderId: string): string | null {
  const halt = haltReason(facts);
  if (halt) return `Pickup door cannot open: ${halt}`;
  if (facts.fault?.code === "DOOR_JAM") {
    return `Pickup door is in fault DOOR_JAM (${facts.fault.message}); reset it first`;
  }
  if (facts.taken.includes(orderId)) return `The pizza of order "${orderId}" was already taken`;
  // After a restart the arm no longer knows whose pizzas wait in the pickup area.
  // A pizza the sensor sees and no order accounts for is the asking order's: the
  // order component asks only for its own READY pizza, after checking its code.
  if (!facts.placed.includes(orderId) && facts.sensors.pizzasInPickup <= facts.placed.length) {
    return `The pizza of order "${orderId}" is not in the pickup area`;
  }
  if (facts.sensors.pizzasInPickup === 0) {
    return `The pickup sensor sees no pizza for order "${orderId}"`;
  }
  return null;
}

/** Why a fault cannot be reset now, or null. */
export function resetRefusal(facts: ArmFacts): string | null {
  const halt = haltReason(facts);
  if (halt) return `Arm cannot be reset: ${halt}`;
  if (facts.sensors.jammed) return "Arm cannot be reset: the drive still reports a jam (armJam)";
  return null;
}
