/**
 * Fault tests of the controller: killed mid-order and started again, and its
 * nats-server restarted mid-order. Both use servers and processes of their own.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openJournal } from "../journal/journal.ts";
import { openSimLedger } from "../hardware/sim/payment.ts";
import { startPrivateNats, waitFor } from "../testing/nats.ts";
import { startTestMachine } from "../testing/machine.ts";
import { controllerEnv, postJson, spawnController } from "../testing/controller_process.ts";

async function statusOf(base: string, orderId: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/api/v1/order/${orderId}/status`);
    return String((await res.json() as Record<string, unknown>).status);
  } catch {
    return undefined;
  }
}

Deno.test("resilience: a controller killed mid-order finishes or refunds it, charging once", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-crash-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  const env = controllerEnv(machineId, dataDir);
  const ledger = () => openSimLedger(openJournal(join(dataDir, machineId, "gateway.db")));
  try {
    await t.step(
      "killed while preparing → REFUNDED, authorization voided once, never captured",
      async () => {
        let c = await spawnController(env);
        const o = await postJson(c.base!, `/api/v1/machine/${machineId}/order`, {
          pizzaId: "margherita",
        });
        const orderId = String(o.orderId);
        const paid = await postJson(c.base!, `/api/v1/order/${orderId}/payment`, {
          method: "CARD",
          paymentDetails: { token: "tok_visa" },
        });
        assert.equal(paid.status, "AUTHORIZED");
        await waitFor(
          "PREPARING",
          async () => (await statusOf(c.base!, orderId)) === "PREPARING" || undefined,
        );
        await c.kill();
        c = await spawnController(env);
        await waitFor(
          "REFUNDED",
          async () => (await statusOf(c.base!, orderId)) === "REFUNDED" || undefined,
          30_000,
        );
        await c.stop();
        const l = ledger();
        assert.equal(l.authorizations(orderId).length, 1);
        assert.equal(l.voids(orderId).length, 1);
        assert.equal(l.captures(orderId).length, 0);
      },
    );
    await t.step(
      "killed while READY → collected or refunded after restart, charged at most once",
      async () => {
        let c = await spawnController(env);
        const o = await postJson(c.base!, `/api/v1/machine/${machineId}/order`, {
          pizzaId: "veggie",
        });
        const orderId = String(o.orderId);
        await postJson(c.base!, `/api/v1/order/${orderId}/payment`, {
          method: "CARD",
          paymentDetails: { token: "tok_visa" },
        });
        await waitFor(
          "READY",
          async () => (await statusOf(c.base!, orderId)) === "READY" || undefined,
          60_000,
        );
        await c.kill();
        c = await spawnController(env);
        // The simulated world restarts with the process, so the pizza in the
        // pickup area may be gone: the order must then end REFUNDED, never charged.
        const pickup = await postJson(c.base!, `/api/v1/order/${orderId}/pickup`, {
          pickupCode: o.pickupCode,
        });
        const end = await waitFor("the order to end", async () => {
          const s = await statusOf(c.base!, orderId);
          return s === "DISPENSED" || s === "REFUNDED" ? s : undefined;
        }, 60_000);
        await waitFor("the money to settle", () => {
          const l = ledger();
          return l.captures(orderId).length + l.voids(orderId).length === 1 || undefined;
        });
        await c.stop();
        const l = ledger();
        assert.equal(
          l.captures(orderId).length,
          end === "DISPENSED" ? 1 : 0,
          JSON.stringify(pickup),
        );
        assert.equal(l.voids(orderId).length, end === "REFUNDED" ? 1 : 0);
      },
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});

Deno.test("resilience: an order finishes across a restart of its nats-server", async () => {
  const nats = await startPrivateNats();
  const m = await startTestMachine({ natsUrl: nats.url, speed: 100 });
  try {
    const o = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "margherita" });
    const orderId = String(o.body.orderId);
    await m.http("POST", `/api/v1/order/${orderId}/payment`, {
      method: "CARD",
      paymentDetails: { token: "tok_visa" },
    });
    await m.waitStatus(orderId, "PREPARING");
    await nats.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await nats.start();
    await m.waitStatus(orderId, "READY", 60_000);
    const pickup = await m.http("POST", `/api/v1/order/${orderId}/pickup`, {
      pickupCode: o.body.pickupCode,
    });
    assert.equal(pickup.body.success, true);
    await m.waitStatus(orderId, "DISPENSED");
    await waitFor("capture", () => m.payment!.ledger.captures(orderId).length === 1 || undefined);
  } finally {
    await m.dispose();
    await nats.dispose();
  }
});
