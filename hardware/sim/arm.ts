/**
 * The simulated arm, pickup door and customer. Motion takes clock time, pauses
 * while `armJam` is set and ends where it is when `armHalt` is asserted; the
 * door motor drives `pickupDoorOpen`; a customer takes the pizza a few seconds
 * after the door opened, unless `customerAbsent`.
 */
import type { TimerHandle } from "../../clock/clock.ts";
import type { ArmPosition } from "../../protocol/arm.ts";
import type { PlantSignal } from "../../protocol/plant.ts";
import { type ArmDriver, type ArmSensors, ArmStoppedError } from "../arm.ts";
import type { SimPlant } from "./plant.ts";

/** Nominal travel times between positions, in ms (symmetric). */
export const simTravelTimesMs: Readonly<Record<string, number>> = {
  "HOME-STORAGE": 2_000,
  "HOME-OVEN": 3_000,
  "HOME-PICKUP": 3_000,
  "STORAGE-OVEN": 4_000,
  "OVEN-PICKUP": 5_000,
  "STORAGE-PICKUP": 6_000,
};

/** Options of {@linkcode createSimArm}. */
export interface SimArmOptions {
  /** Multiplies every travel time (default 1); tests slow the arm down with it. */
  travelScale?: number;
  /** Time the door takes to open or close (default 1000 ms). */
  doorTravelMs?: number;
  /** Time from the door opening to the customer taking the pizza (default 3000 ms). */
  customerDelayMs?: number;
  /** Where the arm stands at start (default HOME; null: between positions). */
  initialPosition?: ArmPosition | null;
  /** Pizzas already in the pickup area at start (default 0). */
  pizzasInPickup?: number;
}

/** A simulated arm: its driver, a view for tests, and its cleanup. */
export interface SimArm {
  driver: ArmDriver;
  /** True while the gripper holds a pizza (picked at STORAGE, released at PICKUP). */
  holding(): boolean;
  /** True while a move is under way (also while a jam holds it). */
  moving(): boolean;
  /** Removes the plant listener and cancels every timer. */
  dispose(): void;
}

interface Motion {
  to: ArmPosition;
  remainingMs: number;
  /** Clock time the running segment started, or null while paused by a jam. */
  segmentStart: number | null;
  timer: TimerHandle | null;
  resolve: () => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

interface DoorMotion {
  open: boolean;
  timer: TimerHandle;
  reject: (err: Error) => void;
  cleanup: () => void;
}

const watchedSignals: ReadonlySet<PlantSignal> = new Set<PlantSignal>([
  "armHalt",
  "armJam",
  "pickupDoorOpen",
]);

/** Nominal travel time between two positions on the simulated arm, in ms. */
export function simTravelTimeMs(from: ArmPosition, to: ArmPosition, scale = 1): number {
  if (from === to) return 0;
  const ms = simTravelTimesMs[`${from}-${to}`] ?? simTravelTimesMs[`${to}-${from}`] ?? 0;
  return ms * scale;
}

/** Creates a simulated arm on `plant`; call `dispose()` when done. */
export function createSimArm(plant: SimPlant, options: SimArmOptions = {}): SimArm {
  const clock = plant.clock;
  const scale = options.travelScale ?? 1;
  const doorTravelMs = options.doorTravelMs ?? 1_000;
  const customerDelayMs = options.customerDelayMs ?? 3_000;
  let position: ArmPosition | null = options.initialPosition === undefined
    ? "HOME"
    : options.initialPosition;
  // Where the arm last stood, so a move from between positions has a travel time.
  let lastPosition: ArmPosition = position ?? "HOME";
  let holding = false;
  let pizzas = options.pizzasInPickup ?? 0;
  let motion: Motion | null = null;
  let door: DoorMotion | null = null;
  let customerTimer: TimerHandle | null = null;
  const listeners = new Set<(s: ArmSensors) => void>();

  const read = (): ArmSensors => ({
    pizzasInPickup: pizzas,
    doorOpen: plant.get("pickupDoorOpen"),
    halted: plant.get("armHalt"),
    jammed: plant.get("armJam"),
  });
  const emit = () => {
    const sensors = read();
    for (const fn of [...listeners]) fn(sensors);
  };

  const runSegment = (m: Motion) => {
    m.segmentStart = clock.now();
    m.timer = clock.setTimeout(() => arrive(m), m.remainingMs);
  };
  const pauseSegment = (m: Motion) => {
    if (m.segmentStart === null) return;
    clock.clearTimeout(m.timer);
    m.remainingMs = Math.max(0, m.remainingMs - (clock.now() - m.segmentStart));
    m.segmentStart = null;
    m.timer = null;
  };
  const arrive = (m: Motion) => {
    if (motion !== m) return;
    motion = null;
    m.cleanup();
    position = m.to;
    lastPosition = m.to;
    let sensorsChanged = false;
    if (m.to === "STORAGE") holding = true;
    if (m.to === "PICKUP" && holding) {
      holding = false;
      pizzas++;
      sensorsChanged = true;
    }
    m.resolve();
    if (sensorsChanged) emit();
  };
  const endMotion = (reason: "stopped" | "halted" | "aborted") => {
    const m = motion;
    if (!m) return;
    motion = null;
    clock.clearTimeout(m.timer);
    m.cleanup();
    // Stopped mid-travel: between positions until the next move arrives.
    position = null;
    m.reject(new ArmStoppedError(reason));
  };

  const customerComes = () => {
    clock.clearTimeout(customerTimer);
    customerTimer = null;
    if (!plant.get("pickupDoorOpen") || plant.get("customerAbsent") || pizzas === 0) return;
    customerTimer = clock.setTimeout(() => {
      customerTimer = null;
      if (!plant.get("pickupDoorOpen") || plant.get("customerAbsent") || pizzas === 0) return;
      pizzas--;
      emit();
    }, customerDelayMs);
  };

  const unlisten = plant.onChange((signal, value) => {
    if (signal === "armHalt" && value) endMotion("halted");
    if (signal === "armJam" && motion) {
      if (value) pauseSegment(motion);
      else runSegment(motion);
    }
    if (signal === "customerAbsent" || signal === "pickupDoorOpen") customerComes();
    if (watchedSignals.has(signal)) emit();
  });

  const driver: ArmDriver = {
    doorTravelMs,
    travelTimeMs: (from, to) => simTravelTimeMs(from, to, scale),
    position: () => position,
    moveTo(to, signal) {
      if (signal?.aborted) return Promise.reject(new ArmStoppedError("aborted"));
      if (plant.get("armHalt")) return Promise.reject(new ArmStoppedError("halted"));
      if (motion) {
        return Promise.reject(new Error(`Arm is already moving to "${motion.to}"`));
      }
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => endMotion("aborted");
        signal?.addEventListener("abort", onAbort, { once: true });
        const m: Motion = {
          to,
          remainingMs: simTravelTimeMs(position ?? lastPosition, to, scale),
          segmentStart: null,
          timer: null,
          resolve,
          reject,
          cleanup: () => signal?.removeEventListener("abort", onAbort),
        };
        motion = m;
        position = null;
        if (!plant.get("armJam")) runSegment(m);
      });
    },
    stop: () => endMotion("stopped"),
    setDoor(open, signal) {
      if (signal?.aborted) return Promise.reject(new Error("Door command aborted"));
      if (door) {
        const old = door;
        door = null;
        clock.clearTimeout(old.timer);
        old.cleanup();
        old.reject(new Error("Door command superseded"));
      }
      if (plant.get("pickupDoorOpen") === open) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          if (door !== d) return;
          door = null;
          clock.clearTimeout(d.timer);
          reject(new Error("Door command aborted"));
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        const d: DoorMotion = {
          open,
          reject,
          cleanup: () => signal?.removeEventListener("abort", onAbort),
          timer: clock.setTimeout(() => {
            if (door !== d) return;
            door = null;
            d.cleanup();
            plant.set("pickupDoorOpen", open);
            resolve();
          }, doorTravelMs),
        };
        door = d;
      });
    },
    read,
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };

  return {
    driver,
    holding: () => holding,
    moving: () => motion !== null,
    dispose() {
      unlisten();
      listeners.clear();
      endMotion("stopped");
      if (door) {
        clock.clearTimeout(door.timer);
        door.cleanup();
        door.reject(new Error("Simulated arm disposed"));
        door = null;
      }
      clock.clearTimeout(customerTimer);
      customerTimer = null;
    },
  };
}
