/**
 * Recovery from the journal after the controller went down at an awkward
 * moment, over real NATS and HTTP (the power loss is played by stopping the
 * machine and editing its journal to what the loss left behind).
 */
import assert from "node:assert/strict";
import { startTestMachine } from "../testing/machine.ts";
import { waitFor } from "../testing/nats.ts";

Deno.test("recovery: an order cut off while paying, its payment never made, can be paid again", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-recovery-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  try {
    let orderId: string;
    const before = await startTestMachine({ speed: 20, dataDir, machineId });
    try {
      const created = await before.http("POST", `/api/v1/machine/${machineId}/order`, {
        pizzaId: "margherita",
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      orderId = String(created.body.orderId);
      // The order journaled "paying"; the power went before its authorize
      // request reached the payment actor (swarm seed 501991).
      before.journal.prepare(
        `UPDATE orders SET stage = 'paying', status = 'PAYMENT_PROCESSING',
           order_json = json_set(order_json, '$.status', 'PAYMENT_PROCESSING')
         WHERE order_id = ?`,
      ).run(orderId);
    } finally {
      await before.dispose();
    }

    const after = await startTestMachine({ speed: 20, dataDir, machineId });
    try {
      const status = () => after.http("GET", `/api/v1/order/${orderId}/status`);
      await waitFor("the recovered order back to PENDING", async () => {
        const s = await status();
        return s.body.status === "PENDING" ? true : undefined;
      });
      const paid = await after.http("POST", `/api/v1/order/${orderId}/payment`, {
        method: "CARD",
        paymentDetails: { token: "tok_visa" },
      });
      assert.equal(paid.status, 200, JSON.stringify(paid.body));
      assert.equal(paid.body.status, "AUTHORIZED");
      assert.equal(after.payment!.ledger.authorizations(orderId).length, 1);
    } finally {
      await after.dispose();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
