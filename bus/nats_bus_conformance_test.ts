import { createRealClock } from "../clock/clock.ts";
import { silentLogger } from "../log/log.ts";
import { createCryptoRandom } from "../random/random.ts";
import { sharedNatsUrl, waitFor } from "../testing/nats.ts";
import { runBusConformance } from "./conformance.ts";
import { connectNatsBus } from "./nats_bus.ts";

Deno.test("nats bus passes the bus conformance suite", async (t) => {
  const clock = createRealClock();
  await runBusConformance(t, {
    prefix: `conf-${createCryptoRandom().uuid().slice(0, 8)}`,
    connect: () => connectNatsBus({ url: sharedNatsUrl, clock, log: silentLogger }),
    advanceUntil: (what, done) => waitFor(what, () => done() || undefined, 10_000).then(() => {}),
  });
});
