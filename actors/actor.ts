/** What every actor module exports a start function for, and what it returns. */
import type { Clock } from "../clock/clock.ts";
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Logger } from "../log/log.ts";
import type { Random } from "../random/random.ts";
import type { MachineConfig } from "../protocol/config.ts";

/** What an actor gets from its host besides its driver. */
export interface ActorContext {
  bus: TypedBus;
  clock: Clock;
  random: Random;
  log: Logger;
  config: MachineConfig;
}

/** A started actor as its host sees it. */
export interface RunningActor {
  /** The XState state value flattened to a string (e.g. "preparing.cooking"). */
  state(): string;
  /** False once the actor stopped or errored; the supervisor then restarts it. */
  alive(): boolean;
  /** Unsubscribes from the bus and stops the XState actor; leaves hardware safe. */
  stop(): Promise<void>;
}

/** Flattens an XState state value to "a.b.c". */
export function stateString(value: unknown): string {
  if (typeof value === "string") return value;
  if (value && typeof value === "object") {
    return Object.entries(value).map(([k, v]) => {
      const rest = stateString(v);
      return rest ? `${k}.${rest}` : k;
    }).join(",");
  }
  return "";
}
