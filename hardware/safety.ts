/**
 * The safety monitor's own IO: the inputs it watches and the two outputs it
 * drives (heater power cut, arm halt). These outputs are wired to the power
 * contactor and the arm's halt line, not to the oven or arm actors, so a trip
 * holds even when those actors misbehave.
 */

/** Discrete inputs the safety monitor watches; a change is reported at once. */
export type SafetyInput = "estop" | "serviceDoorOpen" | "pickupDoorOpen" | "smoke";

/** Every discrete input, in a fixed order. */
export const safetyInputs: readonly SafetyInput[] = [
  "estop",
  "serviceDoorOpen",
  "pickupDoorOpen",
  "smoke",
];

/** The safety monitor's outputs; `true` means cut or halted. */
export interface SafetyOutputs {
  heaterPowerCut: boolean;
  armHalt: boolean;
}

/** One reading of every input, plus the outputs as read back from the wires. */
export interface SafetyReading {
  estop: boolean;
  serviceDoorOpen: boolean;
  pickupDoorOpen: boolean;
  smoke: boolean;
  /** The independent over-temperature sensor in the oven (not the oven's control probe). */
  ovenTempC: number;
  storageTempC: number;
  /** What the output wires carry now (readback), which may differ from what was last set. */
  outputs: SafetyOutputs;
}

/** Called when a discrete input changes. */
export type SafetyInputListener = (input: SafetyInput, value: boolean) => void;

/**
 * The driver the safety monitor owns. Simulated and real implementations keep
 * the same contract:
 * - `onInputChange` calls its listener as soon as the driver sees a change, so a
 *   trip does not wait for the next poll;
 * - `setOutputs` is idempotent and cheap when nothing changes; a local driver
 *   applies it before returning, a remote one sends it at once and reports
 *   failures through its own log (the monitor re-drives on the next poll).
 * The outputs belong to the monitor alone: on every reading it drives them
 * back to what it commands, whoever else wrote them.
 */
export interface SafetyIo {
  /**
   * Reads every input and the outputs' readback.
   *
   * @throws {Error} When the inputs cannot be read (the monitor counts it as an IO failure).
   */
  read(): Promise<SafetyReading>;
  /** Listens to discrete input changes until the returned function is called. */
  onInputChange(listener: SafetyInputListener): () => void;
  /** Drives both outputs to `outputs`. */
  setOutputs(outputs: SafetyOutputs): void;
}
