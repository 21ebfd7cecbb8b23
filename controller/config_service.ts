/**
 * How a pushed config reaches a machine: the process that runs `sync` answers
 * `sync.apply_config`, journals the config and announces its version; every
 * process of the machine reloads it from the shared journal.
 */
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Clock } from "../clock/clock.ts";
import { ok } from "../protocol/define.ts";
import { applyConfig, configApplied } from "../protocol/sync.ts";
import type { ConfigStore } from "./config_store.ts";

/** Serves config pushes (when `answers`) and follows them; returns the stop function. */
export function serveConfig(
  bus: TypedBus,
  configs: ConfigStore,
  clock: Clock,
  answers: boolean,
): () => void {
  const stops = [
    bus.subscribe(configApplied, bus.machineId, (msg) => {
      if (msg.version !== configs.current().version) configs.reload();
    }),
  ];
  if (answers) {
    stops.push(bus.serve(applyConfig, (req) => {
      const applied = configs.apply(req.config, clock.now());
      if (applied) bus.publish(configApplied, { version: req.config.version });
      return ok({ version: configs.current().version, applied });
    }));
  }
  return () => stops.forEach((s) => s());
}
