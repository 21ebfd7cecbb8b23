/**
 * Idempotency keys over real NATS and HTTP: a kiosk that sends an order or a
 * payment again under the same `Idempotency-Key` (a retry after a timeout, two
 * taps at once, a retry after the controller restarted) gets the first result,
 * and nothing happens twice.
 */
import assert from "node:assert/strict";
import { startTestMachine, type TestMachine } from "../testing/machine.ts";

const M = "/api/v1/machine/{m}";

/** Slow enough that an unpaid order waits through every step (10 min = 30 s). */
const speed = 20;

/** A POST with an `Idempotency-Key`; status and parsed body. */
async function post(m: TestMachine, path: string, key: string, body: unknown) {
  const res = await fetch(`${m.apiUrl}${path.replace("{m}", m.machineId)}`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

const count = (m: TestMachine, sql: string, ...args: string[]) =>
  (m.journal.prepare(sql).get(...args) as { n: number }).n;

const orderCount = (m: TestMachine) => count(m, "SELECT COUNT(*) AS n FROM orders");

const cash = (denominationCents: number) => ({
  method: "CASH",
  paymentDetails: { denominationCents },
});

Deno.test("idempotency: one order and one payment per key, however often it is sent", async (t) => {
  const m = await startTestMachine({ speed });
  try {
    await t.step("the same order sent twice makes one order", async () => {
      const first = await post(m, `${M}/order`, "order-a", { pizzaId: "margherita" });
      assert.equal(first.status, 201, JSON.stringify(first.body));
      const again = await post(m, `${M}/order`, "order-a", { pizzaId: "margherita" });
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, first.body);
      assert.equal(orderCount(m), 1);
    });

    await t.step("five identical orders at once make one order", async () => {
      const replies = await Promise.all(
        Array.from({ length: 5 }, () => post(m, `${M}/order`, "order-b", { pizzaId: "pepperoni" })),
      );
      for (const r of replies) assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(new Set(replies.map((r) => r.body.orderId)).size, 1);
      assert.equal(orderCount(m), 2);
      const orderId = String(replies[0]!.body.orderId);
      assert.equal(
        count(m, "SELECT COUNT(*) AS n FROM carousel_reservations WHERE order_id = ?", orderId),
        1,
      );
    });

    await t.step(
      "the same key with another body is 409 naming the key, and changes nothing",
      async () => {
        const r = await post(m, `${M}/order`, "order-a", { pizzaId: "veggie" });
        assert.equal(r.status, 409);
        const error = r.body.error as { code: string; message: string };
        assert.equal(error.code, "CONFLICT");
        assert.match(
          error.message,
          /Idempotency key "order-a" was already used for a different request/,
        );
        assert.equal(orderCount(m), 2);
      },
    );

    await t.step(
      "a bill sent twice under one key counts once; its change is paid once",
      async () => {
        const o = await post(m, `${M}/order`, "order-c", { pizzaId: "margherita" });
        const orderId = String(o.body.orderId);
        const pay = `/api/v1/order/${orderId}/payment`;
        const [one, two] = await Promise.all([
          post(m, pay, "bill-1", cash(500)),
          post(m, pay, "bill-1", cash(500)),
        ]);
        assert.equal(one.status, 200, JSON.stringify(one.body));
        assert.deepEqual(two.body, one.body);
        assert.equal(one.body.insertedCents, 500);
        const later = await post(m, pay, "bill-1", cash(500));
        assert.deepEqual(later.body, one.body);

        const second = await post(m, pay, "bill-2", cash(500));
        assert.equal(second.body.status, "AUTHORIZED");
        assert.equal(second.body.insertedCents, 1000);
        assert.equal(second.body.changeCents, 250);
        assert.deepEqual((await post(m, pay, "bill-2", cash(500))).body, second.body);
        assert.deepEqual(
          m.payment!.ledger.payouts(orderId).map((p) => [p.why, p.amountCents]),
          [["CHANGE", 250]],
        );
        const other = await post(m, pay, "bill-2", cash(1000));
        assert.equal(other.status, 409);
      },
    );

    await t.step("a card payment sent twice under one key authorizes once", async () => {
      const o = await post(m, `${M}/order`, "order-d", { pizzaId: "veggie" });
      const orderId = String(o.body.orderId);
      const body = { method: "CARD", paymentDetails: { token: "tok_visa" } };
      const pay = `/api/v1/order/${orderId}/payment`;
      const [one, two] = await Promise.all([
        post(m, pay, "card-1", body),
        post(m, pay, "card-1", body),
      ]);
      assert.equal(one.status, 200, JSON.stringify(one.body));
      assert.equal(one.body.status, "AUTHORIZED");
      assert.deepEqual(two.body, one.body);
      assert.deepEqual((await post(m, pay, "card-1", body)).body, one.body);
      assert.equal(m.payment!.ledger.authorizations(orderId).length, 1);
    });

    await t.step(
      "a retry whose first reply was lost gets the same order and the bill once",
      async () => {
        // What a restart between acting and remembering the reply leaves behind.
        const o = await post(m, `${M}/order`, "order-e", { pizzaId: "margherita" });
        const orderId = String(o.body.orderId);
        const pay = `/api/v1/order/${orderId}/payment`;
        const bill = await post(m, pay, "bill-e", cash(200));
        assert.equal(bill.body.insertedCents, 200);
        m.journal.exec(
          "UPDATE order_requests SET reply_json = NULL WHERE idempotency_key IN ('order-e', 'bill-e')",
        );
        const order = await post(m, `${M}/order`, "order-e", { pizzaId: "margherita" });
        assert.equal(order.body.orderId, orderId);
        assert.equal(order.body.pickupCode, o.body.pickupCode);
        const again = await post(m, pay, "bill-e", cash(200));
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.equal(again.body.insertedCents, 200);
        assert.equal(orderCount(m), 5);
      },
    );

    await t.step("without a key every request acts, as before", async () => {
      const one = await m.http("POST", `${M}/order`, { pizzaId: "margherita" });
      const two = await m.http("POST", `${M}/order`, { pizzaId: "margherita" });
      assert.equal(one.status, 201);
      assert.notEqual(one.body.orderId, two.body.orderId);
      assert.equal(orderCount(m), 7);
    });
  } finally {
    await m.dispose();
  }
});

Deno.test("idempotency: a retry after a controller restart gets the first order and payment", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-idempotency-" });
  const machineId = `t-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const before = await startTestMachine({ speed, dataDir, machineId });
    let order: Record<string, unknown>;
    let bill: Record<string, unknown>;
    try {
      order = (await post(before, `${M}/order`, "order-r", { pizzaId: "margherita" })).body;
      bill = (await post(before, `/api/v1/order/${order.orderId}/payment`, "bill-r", cash(500)))
        .body;
      assert.equal(bill.insertedCents, 500);
    } finally {
      await before.dispose();
    }
    const after = await startTestMachine({ speed, dataDir, machineId });
    try {
      const again = await post(after, `${M}/order`, "order-r", { pizzaId: "margherita" });
      assert.equal(again.status, 201);
      assert.deepEqual(again.body, order);
      const billAgain = await post(
        after,
        `/api/v1/order/${order.orderId}/payment`,
        "bill-r",
        cash(500),
      );
      assert.deepEqual(billAgain.body, bill);
      assert.equal(orderCount(after), 1);
      const status = await after.http("GET", `/api/v1/order/${order.orderId}/status`);
      assert.equal((status.body.payment as { insertedCents: number }).insertedCents, 500);
      const conflict = await post(after, `${M}/order`, "order-r", { pizzaId: "pepperoni" });
      assert.equal(conflict.status, 409);
    } finally {
      await after.dispose();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
