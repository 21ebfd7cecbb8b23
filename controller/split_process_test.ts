/**
 * One machine in two processes: the safety monitor alone (`--only safety`),
 * everything else in the other. The monitor still cuts the heater on an
 * e-stop, and the order it interrupts is refunded.
 */
import assert from "node:assert/strict";
import { connectTestBus, waitFor } from "../testing/nats.ts";
import { controllerEnv, postJson, spawnController } from "../testing/controller_process.ts";
import * as plant from "../protocol/plant.ts";
import * as supervisor from "../protocol/supervisor.ts";

Deno.test("split processes: the safety monitor in a process of its own protects the machine", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-split-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  const env = controllerEnv(machineId, dataDir);
  const speed = ["--speed", "20"];
  const main = await spawnController(env, [
    ...speed,
    "--only",
    "oven,carousel,arm,payment,order,supervisor,api,plant",
  ]);
  const safety = await spawnController(env, [...speed, "--only", "safety"]);
  const tb = await connectTestBus({ machineId, speed: 20 });
  try {
    await waitFor("the remote safety monitor's heartbeat", async () => {
      const r = await tb.bus.request(supervisor.status, {});
      return r.ok && r.value.components.safety.alive ? true : undefined;
    }, 30_000);
    const base = main.base!;
    const post = (path: string, body: unknown) => postJson(base, path, body);
    const o = await post(`/api/v1/machine/${machineId}/order`, { pizzaId: "margherita" });
    const paid = await post(`/api/v1/order/${o.orderId}/payment`, {
      method: "CARD",
      paymentDetails: { token: "tok_visa" },
    });
    assert.equal(paid.status, "AUTHORIZED");
    const statusOf = async () =>
      (await (await fetch(`${base}/api/v1/order/${o.orderId}/status`)).json()).status;
    await waitFor("PREPARING", async () => (await statusOf()) === "PREPARING" || undefined, 30_000);

    const pressed = await tb.bus.request(plant.set, { signal: "estop", value: true });
    assert.ok(pressed.ok);
    const cut = await waitFor("the heater cut by the remote monitor", async () => {
      const r = await tb.bus.request(plant.read, {});
      return r.ok && r.value.signals.heaterPowerCut && r.value.signals.armHalt
        ? r.value
        : undefined;
    });
    assert.equal(cut.signals.estop, true);
    await waitFor("REFUNDED", async () => (await statusOf()) === "REFUNDED" || undefined, 30_000);
  } finally {
    await tb.close();
    await safety.stop();
    await main.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
