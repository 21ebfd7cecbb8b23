/**
 * The simulated carousel: rotation and ejection that take clock time, and a
 * refrigerated storage whose temperature follows a first-order thermal model.
 * The fridge holds its setpoint (~3 °C); with `fridgeFailed` storage drifts
 * toward ambient, with `storageDoorOpen` it warms quickly; fixed, it cools back.
 */
import { type Clock, sleep } from "../../clock/clock.ts";
import type { CarouselDriver } from "../carousel.ts";
import type { SimPlant, StorageProbe } from "./plant.ts";

/** Options of {@linkcode createSimCarousel}; every field has a realistic default. */
export interface SimCarouselOptions {
  /** Slots on the ring (default 60). */
  slots?: number;
  /** Temperature the fridge holds (default 3 °C). */
  setpointC?: number;
  /** Storage temperature at creation (default the setpoint). */
  initialTempC?: number;
  /** Time constant of warming toward ambient through closed walls (default 2 h). */
  wallTauMs?: number;
  /** Extra time constant of warming while the door is open (default 10 min). */
  doorTauMs?: number;
  /** Most the compressor removes, in °C per second (default 0.015). */
  coolMaxCPerS?: number;
  /** Fixed part of a rotation (default 2 s): start, settle, lock. */
  rotateBaseMs?: number;
  /** Rotation time per slot travelled on the shorter way round (default 120 ms). */
  rotatePerSlotMs?: number;
  /** Time to push a pizza onto the arm's tray (default 4 s). */
  ejectMs?: number;
}

/** What a test or scenario sees of the simulated carousel. */
export interface SimCarouselModel extends StorageProbe {
  /** The slot facing the hatch. */
  position(): number;
  /** Pizzas pushed out so far, by slot. */
  readonly ejectedBySlot: Map<number, number>;
  /** While jammed, rotations and ejections fail after their normal time. */
  setJammed(jammed: boolean): void;
  /** Unhooks the model from the plant. */
  dispose(): void;
}

/** A simulated carousel: the driver the actor uses and the model behind it. */
export interface SimCarousel {
  driver: CarouselDriver;
  model: SimCarouselModel;
}

/** Physics sub-step: 1 s keeps explicit Euler far inside its stable range. */
const STEP_MS = 1000;

/** The storage thermal model, integrated lazily up to `clock.now()` in fixed steps. */
class StorageThermalModel {
  private tempC: number;
  private integratedToMs: number;
  // Inputs as last seen: a change integrates the past with the old values first.
  private fridgeFailed: boolean;
  private doorOpen: boolean;

  constructor(
    private readonly clock: Clock,
    private readonly ambientC: number,
    private readonly setpointC: number,
    private readonly wallTauS: number,
    private readonly doorTauS: number,
    private readonly coolMaxCPerS: number,
    initialTempC: number,
    fridgeFailed: boolean,
    doorOpen: boolean,
  ) {
    this.tempC = initialTempC;
    this.integratedToMs = clock.now();
    this.fridgeFailed = fridgeFailed;
    this.doorOpen = doorOpen;
  }

  temperatureC(): number {
    this.advance();
    return this.tempC;
  }

  setInputs(fridgeFailed: boolean, doorOpen: boolean): void {
    this.advance();
    this.fridgeFailed = fridgeFailed;
    this.doorOpen = doorOpen;
  }

  private advance(): void {
    const now = this.clock.now();
    const dtS = STEP_MS / 1000;
    while (this.integratedToMs + STEP_MS <= now) {
      const leakPerS = 1 / this.wallTauS + (this.doorOpen ? 1 / this.doorTauS : 0);
      const warming = (this.ambientC - this.tempC) * leakPerS;
      // A proportional thermostat: full power 1 °C above the setpoint.
      const cooling = this.fridgeFailed ? 0 : Math.min(
        this.coolMaxCPerS,
        Math.max(0, (this.tempC - this.setpointC) * this.coolMaxCPerS),
      );
      this.tempC += (warming - cooling) * dtS;
      this.integratedToMs += STEP_MS;
    }
  }
}

/**
 * Creates a simulated carousel on `plant` and registers its storage probe as
 * `plant.storage`. A retrieval (rotation plus ejection) takes about 6–10 s.
 *
 * @example
 * ```ts
 * const { driver, model } = createSimCarousel(plant, { slots: 24 });
 * await driver.rotateTo(5);
 * await driver.eject();
 * plant.set("fridgeFailed", true); // storage now warms toward ambient
 * ```
 */
export function createSimCarousel(plant: SimPlant, options: SimCarouselOptions = {}): SimCarousel {
  const clock = plant.clock;
  const slots = options.slots ?? 60;
  if (!Number.isInteger(slots) || slots < 1) {
    throw new RangeError(`Carousel slots must be a positive integer, got "${slots}"`);
  }
  const setpointC = options.setpointC ?? 3;
  const thermal = new StorageThermalModel(
    clock,
    plant.ambientC,
    setpointC,
    (options.wallTauMs ?? 2 * 3_600_000) / 1000,
    (options.doorTauMs ?? 600_000) / 1000,
    options.coolMaxCPerS ?? 0.015,
    options.initialTempC ?? setpointC,
    plant.get("fridgeFailed"),
    plant.get("storageDoorOpen"),
  );
  const unhook = plant.onChange((signal) => {
    if (signal === "fridgeFailed" || signal === "storageDoorOpen") {
      thermal.setInputs(plant.get("fridgeFailed"), plant.get("storageDoorOpen"));
    }
  });
  const rotateBaseMs = options.rotateBaseMs ?? 2000;
  const rotatePerSlotMs = options.rotatePerSlotMs ?? 120;
  const ejectMs = options.ejectMs ?? 4000;
  let position = 0;
  let jammed = false;
  const ejectedBySlot = new Map<number, number>();

  const model: SimCarouselModel = {
    temperatureC: () => thermal.temperatureC(),
    position: () => position,
    ejectedBySlot,
    setJammed: (value) => {
      jammed = value;
    },
    dispose: () => {
      unhook();
      if (plant.storage === model) plant.storage = null;
    },
  };
  plant.storage = model;

  const driver: CarouselDriver = {
    async rotateTo(slot, signal) {
      if (!Number.isInteger(slot) || slot < 0 || slot >= slots) {
        throw new RangeError(`Slot "${slot}" does not exist on a carousel of ${slots} slots`);
      }
      const forward = (slot - position + slots) % slots;
      const distance = Math.min(forward, slots - forward);
      await sleep(clock, rotateBaseMs + rotatePerSlotMs * distance, signal);
      if (jammed) throw new Error(`Carousel jammed while turning to slot ${slot}`);
      position = slot;
    },
    async eject(signal) {
      await sleep(clock, ejectMs, signal);
      if (jammed) throw new Error(`Ejector jammed at slot ${position}`);
      ejectedBySlot.set(position, (ejectedBySlot.get(position) ?? 0) + 1);
    },
    // A real probe reads in tenths of a degree.
    storageTempC: () => Promise.resolve(Math.round(thermal.temperatureC() * 10) / 10),
  };
  return { driver, model };
}
