/**
 * What crosses the machine's boundaries: no card number in the journal, the
 * logs or any message after card orders, and fuzzed bus messages that are
 * refused with an error reply and change nothing.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { findCardNumbers, findCardNumbersInFile } from "../testing/card_numbers.ts";
import { startTestMachine } from "../testing/machine.ts";
import * as orders from "../protocol/order.ts";
import * as carousel from "../protocol/carousel.ts";
import * as payment from "../protocol/payment.ts";

Deno.test("privacy: after card orders no card number is in the journal, logs or messages", async () => {
  const m = await startTestMachine();
  const messages: string[] = [];
  const unsubscribe = m.bus.bus.subscribe(`fornax.${m.machineId}.>`, (msg) => {
    messages.push(new TextDecoder().decode(msg.data));
  });
  try {
    for (const token of ["tok_visa", "tok_mastercard", "tok_chargeDeclined"]) {
      const o = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "veggie" });
      const orderId = String(o.body.orderId);
      await m.http("POST", `/api/v1/order/${orderId}/payment`, {
        method: "CARD",
        paymentDetails: { token },
      });
      if (token === "tok_chargeDeclined") {
        await m.http("POST", `/api/v1/order/${orderId}/cancel`, { reason: "declined" });
        continue;
      }
      await m.waitStatus(orderId, "READY", 40_000);
      await m.http("POST", `/api/v1/order/${orderId}/pickup`, { pickupCode: o.body.pickupCode });
      await m.waitStatus(orderId, "DISPENSED");
    }
    // A card number typed where a token goes is refused at the door, never echoed.
    const o = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "veggie" });
    const bad = await m.http("POST", `/api/v1/order/${o.body.orderId}/payment`, {
      method: "CARD",
      paymentDetails: { token: "4242424242424242" },
    });
    assert.equal(bad.status, 400);
    assert.deepEqual(findCardNumbers(JSON.stringify(bad.body)), []);
    await m.bus.bus.flush();
    assert.ok(messages.length > 50, `saw ${messages.length} messages`);
    assert.deepEqual(findCardNumbers(messages.join("\n")), []);
    assert.deepEqual(findCardNumbers(m.logLines.join("\n")), []);
  } finally {
    unsubscribe();
    await m.dispose();
  }
});

Deno.test("privacy: the journal files hold no card number", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-privacy-" });
  const m = await startTestMachine({ dataDir });
  try {
    const o = await m.http("POST", "/api/v1/machine/{m}/order", { pizzaId: "margherita" });
    await m.http("POST", `/api/v1/order/${o.body.orderId}/payment`, {
      method: "CARD",
      paymentDetails: { token: "tok_visa" },
    });
    await m.waitStatus(String(o.body.orderId), "READY", 40_000);
  } finally {
    await m.dispose();
  }
  try {
    for await (const entry of Deno.readDir(join(dataDir, m.machineId))) {
      const found = await findCardNumbersInFile(join(dataDir, m.machineId, entry.name));
      assert.deepEqual(found, [], entry.name);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("fuzz: random bus requests get error replies and change nothing", async () => {
  const m = await startTestMachine();
  try {
    const listOrders = async () => {
      const r = await m.bus.request(orders.list, {});
      assert.ok(r.ok);
      return r.value.orders.map((o) => `${o.orderId}:${o.status}`).sort();
    };
    const stock = async () => {
      const r = await m.bus.request(carousel.inventory, {});
      assert.ok(r.ok);
      return JSON.stringify(r.value.available);
    };
    const before = { orders: await listOrders(), stock: await stock() };
    const subjects = [
      orders.create,
      orders.pay,
      orders.pickup,
      orders.cancel,
      orders.dispense,
      carousel.reserve,
      carousel.restock,
      payment.authorize,
      payment.insertCash,
      payment.refund,
    ].map((d) => d.subject(m.machineId));
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...subjects),
        fc.oneof(fc.json(), fc.string(), fc.jsonValue().map((v) => JSON.stringify({ body: v }))),
        async (subject, body) => {
          const reply = await m.bus.bus.request(subject, new TextEncoder().encode(body), 5000);
          const decoded = JSON.parse(new TextDecoder().decode(reply));
          assert.equal(decoded.ok, false, `${subject} accepted ${body}`);
          assert.equal(decoded.error.code, "BAD_REQUEST");
        },
      ),
      { numRuns: 150 },
    );
    assert.deepEqual({ orders: await listOrders(), stock: await stock() }, before);
  } finally {
    await m.dispose();
  }
});
