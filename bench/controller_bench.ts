/**
 * Figures of the machine controller: HTTP latency under 50 concurrent clients
 * (menu and order status) on a machine at real speed, and the wall time of one
 * full order at --speed 1000. Runs whole machines in-process on the shared
 * nats-server.
 *
 *   deno task bench
 */
import { startTestMachine, type TestMachine } from "../testing/machine.ts";

const clients = 50;
const requestsPerClient = 100;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function report(name: string, samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(2);
  console.log(
    `${name.padEnd(28)} n=${s.length}  p50=${f(percentile(s, 50))} ms  p95=${
      f(percentile(s, 95))
    } ms  p99=${f(percentile(s, 99))} ms  max=${f(s.at(-1)!)} ms`,
  );
}

async function load(url: string): Promise<number[]> {
  const samples: number[] = [];
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let i = 0; i < requestsPerClient; i++) {
      const t0 = performance.now();
      const r = await fetch(url);
      await r.arrayBuffer();
      samples.push(performance.now() - t0);
      if (!r.ok) throw new Error(`${url} answered ${r.status}`);
    }
  }));
  return samples;
}

async function withMachine(speed: number, fn: (m: TestMachine) => Promise<void>) {
  const m = await startTestMachine({ speed });
  try {
    await fn(m);
  } finally {
    await m.dispose();
  }
}

// Latency at real speed: at --speed 1000 the simulated hardware itself keeps
// the CPU busy (the oven's control loop alone ticks 10,000 times a wall second).
await withMachine(1, async (m) => {
  const base = m.apiUrl!;
  const menuUrl = `${base}/api/v1/machine/${m.machineId}/menu`;
  await load(menuUrl); // warm-up
  report("GET menu (50 clients)", await load(menuUrl));
  const created = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "margherita" });
  const orderId = String(created.body.orderId);
  report("GET status (50 clients)", await load(`${base}/api/v1/order/${orderId}/status`));
  await m.http("POST", `/api/v1/order/${orderId}/cancel`, { reason: "bench" });
});

await withMachine(1000, async (m) => {
  const orderTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const o = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "pepperoni" });
    const id = String(o.body.orderId);
    await m.http("POST", `/api/v1/order/${id}/payment`, {
      method: "CARD",
      paymentDetails: { token: "tok_visa" },
    });
    await m.waitStatus(id, "READY", 120_000);
    await m.http("POST", `/api/v1/order/${id}/pickup`, { pickupCode: o.body.pickupCode });
    await m.waitStatus(id, "DISPENSED");
    orderTimes.push(performance.now() - t0);
  }
  console.log(
    `full order at --speed 1000   first (cold oven) ${(orderTimes[0]! / 1000).toFixed(2)} s, then ${
      orderTimes.slice(1).map((t) => (t / 1000).toFixed(2) + " s").join(", ")
    } wall`,
  );
});
