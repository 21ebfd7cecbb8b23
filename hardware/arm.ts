/**
 * The robotic arm and the pickup door as the arm actor drives them. Simulated
 * and real drivers implement the same small interface.
 */
import type { ArmPosition } from "../protocol/arm.ts";

/** What the arm's sensors read now. */
export interface ArmSensors {
  /** Pizzas the pickup sensor sees in the pickup area. */
  pizzasInPickup: number;
  /** The door's end switch reads open (anything but fully closed). */
  doorOpen: boolean;
  /** The safety chain's halt output is asserted: the drive cannot move. */
  halted: boolean;
  /** The drive reports a jam (blocked axis); a technician must free it. */
  jammed: boolean;
}

/** A move ended without arriving: stopped by us, by the halt output, or aborted. */
export class ArmStoppedError extends Error {
  /** Creates the error; `reason` says who stopped the move. */
  constructor(readonly reason: "stopped" | "halted" | "aborted", options?: ErrorOptions) {
    super(`Arm move ended without arriving: ${reason}`, options);
    this.name = "ArmStoppedError";
  }
}

/** The arm's drive, door motor and pickup sensor. */
export interface ArmDriver {
  /** Nominal travel time between two positions, in ms. */
  travelTimeMs(from: ArmPosition, to: ArmPosition): number;
  /** Nominal time the door takes to open or close, in ms. */
  readonly doorTravelMs: number;
  /** Where the arm stands, or null between positions (after a halt or stop). */
  position(): ArmPosition | null;
  /**
   * Moves to `to` and resolves on arrival; never resolves while jammed.
   *
   * @throws {ArmStoppedError} When stopped, halted or `signal` aborts.
   */
  moveTo(to: ArmPosition, signal?: AbortSignal): Promise<void>;
  /** Stops any motion now (category 0 stop); the arm stays where it is. */
  stop(): void;
  /**
   * Drives the pickup door open or closed; resolves once the end switch reads it.
   *
   * @throws {Error} When a newer door command superseded this one or `signal` aborts.
   */
  setDoor(open: boolean, signal?: AbortSignal): Promise<void>;
  /** Reads every sensor. */
  read(): ArmSensors;
  /** Calls `fn` after any sensor changed, until the returned function is called. */
  subscribe(fn: (sensors: ArmSensors) => void): () => void;
}
