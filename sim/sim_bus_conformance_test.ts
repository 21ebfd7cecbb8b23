import { runBusConformance } from "../bus/conformance.ts";
import { createSeededRandom } from "../random/random.ts";
import { type BusFaultOptions, createSimBus } from "./sim_bus.ts";
import { createVirtualClock, type VirtualClock } from "./virtual_clock.ts";

/** Steps the virtual clock until `done()`; fails when no timer is left to fire. */
async function advanceUntil(clock: VirtualClock, what: string, done: () => boolean) {
  for (let steps = 0; !done(); steps++) {
    if (steps > 100_000 || !(await clock.step())) {
      throw new Error(`Nothing left to run while waiting for ${what}`);
    }
  }
}

function suite(faults: BusFaultOptions) {
  return async (t: Deno.TestContext) => {
    const clock = createVirtualClock(Date.UTC(2025, 0, 1));
    const bus = createSimBus({ clock, random: createSeededRandom(7), faults });
    try {
      await runBusConformance(t, {
        prefix: "conf",
        connect: () => Promise.resolve(bus.connect()),
        advanceUntil: (what, done) => advanceUntil(clock, what, done),
      });
    } finally {
      await bus.close();
    }
  };
}

Deno.test("sim bus passes the bus conformance suite", suite({}));

Deno.test(
  "sim bus passes the bus conformance suite with random delays",
  suite({ delay: { minMs: 0, maxMs: 50 } }),
);
