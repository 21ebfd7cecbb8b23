/** The same world on the real nats-server, where a supervisor can watch it. */
import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { parseScenario } from "./scenario.ts";
import { runRealtime } from "./realtime.ts";
import { sharedNatsUrl } from "../testing/nats.ts";

Deno.test("realtime: a scenario runs on real NATS at 500x and a watcher sees it", async () => {
  const machineId = `sim-rt-${crypto.randomUUID().slice(0, 8)}`;
  const resolved = parseScenario({
    name: "rt",
    seed: 2,
    start: "2025-03-03T12:00:00Z",
    durationH: 0.1,
    drainMaxMin: 30,
    machine: { machineId, storageSlots: 8 },
    customers: { baseRatePerH: 20, noShowShare: 0, mistypeShare: 0 },
    faults: [{ type: "powerLoss", atMin: 3, restartAfterS: 20 }],
  });
  const nc = await connect({ servers: sharedNatsUrl });
  const seen = new Set<string>();
  const sub = nc.subscribe(`fornax.${machineId}.>`, {
    callback: (_err, msg) => void seen.add(msg.subject.split(".").slice(2, 5).join(".")),
  });
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  try {
    const code = await runRealtime({
      resolved,
      seed: 2,
      source: "rt.json",
      speed: 500,
      natsUrl: sharedNatsUrl,
      json: true,
      status: () => {},
    });
    const summary = JSON.parse(out.join("\n"));
    assert.equal(code, 0, out.join("\n"));
    assert.equal(summary.boots, 2);
    assert.ok(summary.orders >= 1, out.join("\n"));
    assert.ok(seen.has("order.evt.updated"), [...seen].join(", "));
    assert.ok(seen.has("oven.evt.temperature"), [...seen].join(", "));
  } finally {
    console.log = log;
    sub.unsubscribe();
    await nc.close();
  }
});
