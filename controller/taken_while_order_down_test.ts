/**
 * One machine in two processes: the order component (with the API) alone, the
 * hardware actors in the other. The order process dies while a pizza is READY
 * and the customer takes it, so nobody hears the arm's `taken` event; the
 * restarted order process asks the arm and ends the order DISPENSED, captured
 * once, instead of refunding it 30 minutes later.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openJournal } from "../journal/journal.ts";
import { openSimLedger } from "../hardware/sim/payment.ts";
import * as arm from "../protocol/arm.ts";
import { connectTestBus, waitFor } from "../testing/nats.ts";
import {
  controllerEnv,
  type ControllerProcess,
  postJson,
  spawnController,
} from "../testing/controller_process.ts";

Deno.test("split processes: a pizza taken while the order process is down ends DISPENSED, captured once", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-taken-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  const env = controllerEnv(machineId, dataDir);
  const speed = 50;
  const orderArgs = ["--speed", String(speed), "--only", "order,api"];
  const hardware = await spawnController(env, [
    "--speed",
    String(speed),
    "--only",
    "oven,carousel,arm,payment,safety,supervisor,plant",
  ]);
  const tb = await connectTestBus({ machineId, speed });
  let front: ControllerProcess | null = null;
  const base = () => front?.base ?? "";
  const orderOf = async (orderId: string) => {
    const res = await fetch(`${base()}/api/v1/order/${orderId}/status`);
    return await res.json() as { status: string; readyAt: number; dispensedAt: number };
  };
  const statusOf = async (orderId: string) => (await orderOf(orderId)).status;
  try {
    // One process at a time opens the new journal.
    await waitFor("the hardware process", async () => {
      const r = await tb.bus.request(arm.status, {}, { timeoutMs: 5_000 * speed });
      return r.ok || undefined;
    }, 30_000);
    front = await spawnController(env, orderArgs);
    await waitFor("the hardware process to stock the menu", async () => {
      const res = await fetch(`${base()}/api/v1/machine/${machineId}/menu`);
      const menu = await res.json() as { pizzas?: { pizzaId: string; available: boolean }[] };
      return menu.pizzas?.some((p) => p.pizzaId === "margherita" && p.available) || undefined;
    }, 30_000);
    const o = await postJson(base(), `/api/v1/machine/${machineId}/order`, {
      pizzaId: "margherita",
    });
    const orderId = String(o.orderId);
    const paid = await postJson(base(), `/api/v1/order/${orderId}/payment`, {
      method: "CARD",
      paymentDetails: { token: "tok_visa" },
    });
    assert.equal(paid.status, "AUTHORIZED", JSON.stringify(paid));
    await waitFor("READY", async () => (await statusOf(orderId)) === "READY" || undefined, 60_000);

    await front.kill();
    front = null;
    // The customer takes the pizza (staff opened the door for it) while no
    // order component listens: the `taken` event reaches nobody.
    const opened = await tb.bus.request(arm.openDoor, { orderId }, { timeoutMs: 5_000 * speed });
    assert.ok(opened.ok, JSON.stringify(opened));
    await waitFor("the arm to report the pizza taken", async () => {
      const r = await tb.bus.request(arm.status, {}, { timeoutMs: 5_000 * speed });
      return r.ok && r.value.taken.includes(orderId) ? true : undefined;
    }, 30_000);

    front = await spawnController(env, orderArgs);
    const end = await waitFor("DISPENSED after the restart", async () => {
      const order = await orderOf(orderId);
      return order.status === "DISPENSED" ? order : undefined;
    }, 60_000);
    assert.ok(
      end.dispensedAt < end.readyAt + 30 * 60_000,
      "the restarted order asked the arm at once, not only when its READY hold ran out",
    );
    const ledger = openSimLedger(openJournal(join(dataDir, machineId, "gateway.db")));
    await waitFor("the capture", () => ledger.captures(orderId).length === 1 || undefined);
    assert.equal(ledger.authorizations(orderId).length, 1);
    assert.equal(ledger.voids(orderId).length, 0);
    assert.equal(ledger.refunds(orderId).length, 0);
  } finally {
    await tb.close();
    await front?.stop();
    await hardware.stop();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
