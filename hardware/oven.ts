/**
 * The oven's hardware as the oven actor sees it: one thermocouple and one
 * heater output. On a real machine both sit on the PLC (Modbus), hence async.
 */

/** Thermocouple in, heater power out. */
export interface OvenDriver {
  /**
   * Reads the cavity thermocouple in °C. An open or shorted thermocouple reads
   * far outside the oven's range (e.g. 1372 or -270); the actor judges that.
   *
   * @throws {Error} When the PLC does not answer.
   */
  readTemperatureC(): Promise<number>;
  /**
   * Sets the heater's power in percent (0 = off, 100 = full). Writes take
   * effect in call order, so the last call wins (a fault's 0 % included).
   *
   * @throws {RangeError} When `pct` is not a number within 0–100.
   * @throws {Error} When the PLC does not answer.
   */
  setHeaterPct(pct: number): Promise<void>;
}
