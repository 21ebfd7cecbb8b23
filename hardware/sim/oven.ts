/**
 * The simulated oven: one lumped thermal mass heated by the heater and losing
 * heat to ambient through the walls. It integrates lazily up to `clock.now()`
 * in fixed sub-steps, whenever it is read or an input changes, so the same
 * inputs at the same clock times give the same temperatures.
 */
import type { OvenDriver } from "../oven.ts";
import { gaussian, type Random } from "../../random/random.ts";
import type { OvenProbe, SimPlant } from "./plant.ts";

/** How the simulated thermocouple and its amplifier err. */
export interface ThermocoupleError {
  /** Draws the noise; a seeded stream in the simulator. */
  random: Random;
  /** Standard deviation of the noise, in °C (default 0.25). */
  noiseC?: number;
  /** The amplifier's step: readings are multiples of it, in °C (default 0.25, a MAX31855's). */
  resolutionC?: number;
}

/** Physical constants of the simulated oven. */
export interface SimOvenOptions {
  /** Heater power at 100 %, in W (default 3000). */
  heaterPowerW?: number;
  /** Heat capacity of cavity, stone and walls, in J/K (default 2565). */
  thermalMassJPerK?: number;
  /** Heat loss to ambient per kelvin above it, in W/K (default 7.94: 400 °C at full power). */
  heatLossWPerK?: number;
  /** Integration sub-step in clock ms (default 100). */
  stepMs?: number;
  /** Temperature at creation (default the plant's ambient). */
  startTempC?: number;
  /** Heat a cold pizza and the open door cost, in J (default 40 000: about 16 °C). */
  pizzaLoadJ?: number;
  /** What an open thermocouple reads (default 1372, type K full scale). */
  openThermocoupleC?: number;
  /** Reading noise and resolution; without it the reading is the exact temperature. */
  thermocouple?: ThermocoupleError;
}

/** The oven model's probe plus what the rest of the simulated world does to it. */
export interface SimOvenModel extends OvenProbe {
  /** The door opened and a cold pizza went in: costs `heatJ` (default `pizzaLoadJ`). */
  loadPizza(heatJ?: number): void;
  /** Heater power delivered now, in W (0 while power is cut or the heater failed). */
  powerW(): number;
  /**
   * Calls `fn` with the temperature at the end of every integration sub-step,
   * in order, until the returned function is called: an exact trace however
   * seldom the oven is read. Sub-steps are integrated lazily, so `fn` may hear
   * of a step later than its `atMs`.
   */
  watch(fn: (atMs: number, tempC: number) => void): () => void;
  /** Stops listening to the plant and unregisters the probe. */
  dispose(): void;
}

/** What {@linkcode createSimOven} returns. */
export interface SimOven {
  driver: OvenDriver;
  model: SimOvenModel;
}

/**
 * Creates a simulated oven on `plant` and registers it as `plant.oven`. With
 * the defaults, full power heats it from 22 to 220 °C in about 4 minutes and
 * would settle near 400 °C, so the controller really has to hold it; holding
 * 220 takes about 52 %.
 *
 * @throws {RangeError} When a constant is not a positive finite number.
 */
export function createSimOven(plant: SimPlant, options: SimOvenOptions = {}): SimOven {
  const heaterPowerW = positive("heaterPowerW", options.heaterPowerW ?? 3000);
  const thermalMassJPerK = positive("thermalMassJPerK", options.thermalMassJPerK ?? 2565);
  const heatLossWPerK = positive("heatLossWPerK", options.heatLossWPerK ?? 3000 / 378);
  const stepMs = positive("stepMs", options.stepMs ?? 100);
  const pizzaLoadJ = options.pizzaLoadJ ?? 40_000;
  const openThermocoupleC = options.openThermocoupleC ?? 1372;
  const tc = options.thermocouple;
  const noiseC = tc?.noiseC ?? 0.25;
  const resolutionC = positive("resolutionC", tc?.resolutionC ?? 0.25);
  /** What the thermocouple reads of `trueC`. */
  const reading = (trueC: number): number =>
    tc ? Math.round((trueC + gaussian(tc.random, noiseC)) / resolutionC) * resolutionC : trueC;
  const clock = plant.clock;
  // Exact solution of C·dT/dt = P − k·(T − Tamb) over one sub-step with P held.
  const decay = Math.exp(-(stepMs / 1000) * heatLossWPerK / thermalMassJPerK);

  let tempC = options.startTempC ?? plant.ambientC;
  let heaterPct = 0;
  let energyWh = 0;
  let powered = isPowered();
  let integratedToMs = clock.now();
  const watchers = new Set<(atMs: number, tempC: number) => void>();

  function isPowered(): boolean {
    return !plant.get("heaterPowerCut") && !plant.get("heaterFailed");
  }

  function deliveredW(): number {
    return powered ? heaterPowerW * heaterPct / 100 : 0;
  }

  /** Integrates with the inputs held so far, up to the last whole sub-step before now. */
  function advance(): void {
    const nowMs = clock.now();
    const powerW = deliveredW();
    const settleC = plant.ambientC + powerW / heatLossWPerK;
    while (integratedToMs + stepMs <= nowMs) {
      tempC = settleC + (tempC - settleC) * decay;
      energyWh += powerW * stepMs / 3_600_000;
      integratedToMs += stepMs;
      for (const fn of watchers) fn(integratedToMs, tempC);
    }
  }

  const unlisten = plant.onChange((signal) => {
    if (signal !== "heaterPowerCut" && signal !== "heaterFailed") return;
    // The plant already holds the new value: integrate up to now with the old one.
    advance();
    powered = isPowered();
  });

  const model: SimOvenModel = {
    temperatureC() {
      advance();
      return tempC;
    },
    heaterPct: () => heaterPct,
    energyWh() {
      advance();
      return energyWh;
    },
    powerW: () => deliveredW(),
    loadPizza(heatJ = pizzaLoadJ) {
      advance();
      tempC -= Math.max(0, heatJ) / thermalMassJPerK;
    },
    watch(fn) {
      watchers.add(fn);
      return () => watchers.delete(fn);
    },
    dispose() {
      unlisten();
      watchers.clear();
      if (plant.oven === model) plant.oven = null;
    },
  };
  plant.oven = model;

  const driver: OvenDriver = {
    readTemperatureC() {
      advance();
      return Promise.resolve(plant.get("thermocoupleFailed") ? openThermocoupleC : reading(tempC));
    },
    setHeaterPct(pct) {
      if (!Number.isFinite(pct) || pct < 0 || pct > 100) {
        return Promise.reject(new RangeError(`Heater power must be 0-100 %, got "${pct}"`));
      }
      advance();
      heaterPct = pct;
      return Promise.resolve();
    },
  };
  return { driver, model };
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`Oven constant "${name}" must be a positive number, got "${value}"`);
  }
  return value;
}
