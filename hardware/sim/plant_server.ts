/**
 * The simulated plant's panel on the bus: operators, tests and the README press
 * the e-stop of a simulated machine with `plant.set`, and an actor in another
 * process reads and drives the plant through the same subjects.
 */
import type { TypedBus } from "../../bus/typed_bus.ts";
import { fail, ok } from "../../protocol/define.ts";
import { changed, type PlantSignal, read, set } from "../../protocol/plant.ts";
import type { SimPlant } from "./plant.ts";

/** Signals only the simulated devices drive; the panel refuses to write them. */
const readOnlySignals: ReadonlySet<PlantSignal> = new Set(["pickupDoorOpen"]);

/**
 * Serves `plant.set` and `plant.read` for `plant` on `bus` and publishes
 * `plant.changed` on every signal change; returns the function that stops it.
 *
 * @example
 * ```ts
 * const stop = servePlant(bus, plant);
 * await bus.request(set, { signal: "estop", value: true });
 * stop();
 * ```
 */
export function servePlant(bus: TypedBus, plant: SimPlant): () => void {
  const stops = [
    plant.onChange((signal, value) => bus.publish(changed, { signal, value })),
    bus.serve(set, (req) => {
      if (readOnlySignals.has(req.signal)) {
        return fail(
          "BAD_REQUEST",
          `Signal "${req.signal}" is read-only: the pickup door's motor drives it`,
        );
      }
      plant.set(req.signal, req.value);
      return ok(plant.snapshot());
    }),
    bus.serve(read, () => ok(plant.snapshot())),
  ];
  return () => {
    for (const stop of stops) stop();
  };
}
