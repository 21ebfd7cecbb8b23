/**
 * The refrigerated storage carousel as the carousel actor sees it: a ring of
 * slots that turns one slot to the hatch, an ejector that pushes one pizza
 * from that slot onto the arm's tray, and the storage temperature probe.
 * Simulated (`hardware/sim/carousel.ts`) and real drivers implement it.
 */

/** The carousel's hardware. Operations reject on a device fault or when `signal` aborts. */
export interface CarouselDriver {
  /**
   * Turns the carousel until `slot` faces the hatch; aborting stops the motor.
   *
   * @throws {RangeError} When `slot` does not exist.
   */
  rotateTo(slot: number, signal?: AbortSignal): Promise<void>;
  /** Pushes one pizza from the slot at the hatch onto the arm's tray. */
  eject(signal?: AbortSignal): Promise<void>;
  /** Reads the storage temperature probe, in °C. */
  storageTempC(): Promise<number>;
}
