/**
 * E-stop to heater-cut latency over NATS, as a machine with the safety monitor
 * in a process of its own would see it: the simulated plant and its panel on
 * one connection, the safety monitor with the remote IO on another, and an
 * operator on a third who presses the e-stop (`plant.set estop=true`) and
 * waits for `plant.changed heaterPowerCut=true`. Between presses the operator
 * releases the e-stop and a technician resets the monitor.
 *
 * Usage: deno run -A bench/safety_bench.ts [presses=500] [warmup=50]
 * (NATS_URL overrides nats://127.0.0.1:4222)
 */
import { startSafety } from "../actors/safety/mod.ts";
import { connectNatsBus, type NatsBus } from "../bus/nats_bus.ts";
import { TypedBus } from "../bus/typed_bus.ts";
import { type Clock, createRealClock } from "../clock/clock.ts";
import { RemoteSafetyIo } from "../hardware/sim/safety_io.ts";
import { SimPlant } from "../hardware/sim/plant.ts";
import { servePlant } from "../hardware/sim/plant_server.ts";
import { silentLogger } from "../log/log.ts";
import { changed, type PlantSignal, set } from "../protocol/plant.ts";
import { reset } from "../protocol/safety.ts";
import { createCryptoRandom } from "../random/random.ts";
import { testConfig } from "../testing/fixtures.ts";
import { sharedNatsUrl } from "../testing/nats.ts";

const presses = Number(Deno.args[0] ?? 500);
const warmup = Number(Deno.args[1] ?? 50);
const clock = createRealClock();
const random = createCryptoRandom();
const machineId = `bench-${random.uuid().slice(0, 8)}`;

async function connect(name: string): Promise<{ raw: NatsBus; bus: TypedBus }> {
  const raw = await connectNatsBus({ url: sharedNatsUrl, clock, log: silentLogger, name });
  return { raw, bus: new TypedBus(raw, { clock, random, log: silentLogger, machineId }) };
}

const config = testConfig({ version: "bench" });

/** Resolves when `signal` is next reported as `value`; rejects after `timeoutMs`. */
function nextChange(
  waiters: Set<(signal: PlantSignal, value: boolean) => void>,
  signal: PlantSignal,
  value: boolean,
  c: Clock,
  timeoutMs = 2000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = c.setTimeout(() => {
      waiters.delete(waiter);
      reject(new Error(`No "${signal}=${value}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = (s: PlantSignal, v: boolean) => {
      if (s !== signal || v !== value) return;
      waiters.delete(waiter);
      c.clearTimeout(timer);
      resolve();
    };
    waiters.add(waiter);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const plantSide = await connect("bench-plant");
const safetySide = await connect("bench-safety");
const operator = await connect("bench-operator");
const plant = new SimPlant(clock);
const stopServer = servePlant(plantSide.bus, plant);
const io = new RemoteSafetyIo(safetySide.bus);
const safety = startSafety(
  { bus: safetySide.bus, clock, random, log: silentLogger, config },
  io,
);
const waiters = new Set<(signal: PlantSignal, value: boolean) => void>();
const unsubscribe = operator.bus.subscribe(changed, machineId, (m) => {
  for (const w of [...waiters]) w(m.signal, m.value);
});
await operator.raw.flush();

const samplesMs: number[] = [];
try {
  const deadline = performance.now() + 5000;
  while (safety.state() !== "armed") {
    if (performance.now() > deadline) throw new Error("Safety monitor did not arm");
    await new Promise((r) => clock.setTimeout(() => r(undefined), 10));
  }
  for (let i = 0; i < warmup + presses; i++) {
    const cut = nextChange(waiters, "heaterPowerCut", true, clock);
    const t0 = performance.now();
    const pressed = operator.bus.request(set, { signal: "estop", value: true });
    await cut;
    const dt = performance.now() - t0;
    if (i >= warmup) samplesMs.push(dt);
    if (!(await pressed).ok) throw new Error("E-stop press refused");
    if (!(await operator.bus.request(set, { signal: "estop", value: false })).ok) {
      throw new Error("E-stop release refused");
    }
    // The monitor may not have heard the release yet: a CONFLICT is retried.
    const enabled = nextChange(waiters, "heaterPowerCut", false, clock);
    for (let attempt = 0;; attempt++) {
      const r = await operator.bus.request(reset, { performedBy: "bench" });
      if (r.ok) break;
      if (r.error.code !== "CONFLICT" || attempt > 200) {
        throw new Error(`Reset failed: ${r.error.code}: ${r.error.message}`);
      }
      await new Promise((r) => clock.setTimeout(() => r(undefined), 1));
    }
    await enabled;
  }
} finally {
  unsubscribe();
  await safety.stop();
  io.close();
  stopServer();
  await operator.raw.close();
  await safetySide.raw.close();
  await plantSide.raw.close();
}

const sorted = [...samplesMs].sort((a, b) => a - b);
const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
const fmt = (ms: number) => `${ms.toFixed(3)} ms`;
console.log(
  `safety bench: e-stop -> heater cut over NATS (plant, safety, operator on 3 connections)`,
);
console.log(`presses: ${sorted.length} (after ${warmup} warm-up), server ${sharedNatsUrl}`);
console.log(
  `p50 ${fmt(percentile(sorted, 50))}  p95 ${fmt(percentile(sorted, 95))}  ` +
    `p99 ${fmt(percentile(sorted, 99))}  max ${fmt(sorted.at(-1)!)}  mean ${fmt(mean)}`,
);
console.log(`goal p99 < 2 ms: ${percentile(sorted, 99) < 2 ? "met" : "NOT met"}`);
