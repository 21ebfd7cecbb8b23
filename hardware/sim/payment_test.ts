import assert from "node:assert/strict";
import { createRealClock } from "../../clock/clock.ts";
import { openJournal } from "../../journal/journal.ts";
import type { AuthorizeRequest, GatewayResult } from "../payment.ts";
import { createSimPayment, openSimLedger } from "./payment.ts";
import { SimPlant } from "./plant.ts";

const speed = 100;

function approved(r: GatewayResult) {
  assert.equal(r.type, "approved", JSON.stringify(r));
  return r as Extract<GatewayResult, { type: "approved" }>;
}

/** A card authorization of `orderId` under its first key. */
function authorization(
  orderId: string,
  token: string,
  amountCents = 750,
  method: AuthorizeRequest["method"] = "CARD",
): AuthorizeRequest {
  return { idempotencyKey: `${orderId}:authorize`, orderId, amountCents, method, token };
}

/** Resolves with "silent" when `p` has not settled after `wallMs`. */
async function silentFor(p: Promise<unknown>, controller: AbortController, wallMs: number) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"silent">((r) => timer = setTimeout(() => r("silent"), wallMs));
  const outcome = await Promise.race([p.then(() => "answered", () => "rejected"), timeout]);
  clearTimeout(timer);
  controller.abort(new Error("caller gave up"));
  await p.catch(() => {});
  return outcome;
}

Deno.test("sim payment gateway, reader and cash acceptor", async (t) => {
  const clock = createRealClock({ speed });
  const plant = new SimPlant(clock);
  const dir = await Deno.makeTempDir({ prefix: "fornax-sim-payment-" });
  const ledgerPath = `${dir}/gateway.db`;
  const sim = createSimPayment(plant, { ledgerPath, latencyMs: 200 });
  const { gateway, ledger } = sim;
  const order = () => crypto.randomUUID();
  try {
    await t.step("tok_visa approves with last4 4242; a repeated key replays it", async () => {
      const orderId = order();
      const req = authorization(orderId, "tok_visa");
      const first = approved(await gateway.authorize(req));
      assert.equal(first.last4, "4242");
      assert.doesNotMatch(JSON.stringify(first), /4242424242424242|tok_/);
      assert.deepEqual(await gateway.authorize(req), first);
      assert.equal(ledger.authorizations(orderId).length, 1);
      assert.equal(ledger.calls(orderId, "authorize").length, 2);
    });

    await t.step("tok_mastercard approves with last4 4444", async () => {
      const orderId = order();
      const r = approved(
        await gateway.authorize(authorization(orderId, "tok_mastercard", 100, "MOBILE_PAY")),
      );
      assert.equal(r.last4, "4444");
    });

    await t.step("tok_chargeDeclined declines, and the decline is replayed", async () => {
      const orderId = order();
      const req = authorization(orderId, "tok_chargeDeclined");
      const r = await gateway.authorize(req);
      assert.equal(r.type, "declined");
      assert.equal(r.type === "declined" && r.code, "card_declined");
      assert.deepEqual(await gateway.authorize(req), r);
      assert.equal(ledger.authorizations(orderId).length, 0);
    });

    await t.step(
      "tok_timeout: the first attempt of a key never answers, the next approves",
      async () => {
        const orderId = order();
        const req = authorization(orderId, "tok_timeout");
        const controller = new AbortController();
        const first = gateway.authorize(req, { signal: controller.signal });
        assert.equal(await silentFor(first, controller, 100), "silent");
        approved(await gateway.authorize(req));
        assert.equal(ledger.authorizations(orderId).length, 1);
        // Another key is another first attempt.
        const other = new AbortController();
        const again = gateway.authorize({ ...req, idempotencyKey: `${orderId}:authorize:2` }, {
          signal: other.signal,
        });
        assert.equal(await silentFor(again, other, 100), "silent");
      },
    );

    await t.step("tok_gatewayDown never answers; aborting rejects", async () => {
      const orderId = order();
      const req = authorization(orderId, "tok_gatewayDown");
      for (let i = 0; i < 2; i++) {
        const controller = new AbortController();
        const p = gateway.authorize(req, { signal: controller.signal });
        assert.equal(await silentFor(p, controller, 80), "silent");
        await assert.rejects(p, /caller gave up/);
      }
      assert.equal(ledger.calls(orderId).length, 2);
      assert.equal(ledger.authorizations(orderId).length, 0);
    });

    await t.step(
      "a re-issue without token replays a known key and declines an unknown one",
      async () => {
        const orderId = order();
        const base = { orderId, amountCents: 500, method: "CARD" as const };
        const first = approved(
          await gateway.authorize({ ...base, idempotencyKey: `${orderId}:a`, token: "tok_visa" }),
        );
        assert.deepEqual(
          await gateway.authorize({ ...base, idempotencyKey: `${orderId}:a`, token: null }),
          first,
        );
        const unknown = await gateway.authorize({
          ...base,
          idempotencyKey: `${orderId}:b`,
          token: null,
        });
        assert.equal(unknown.type === "declined" && unknown.code, "resource_missing");
      },
    );

    await t.step("capture once, void and refund follow the authorization's state", async () => {
      const orderId = order();
      const auth = approved(await gateway.authorize(authorization(orderId, "tok_visa", 900)));
      const capture = {
        idempotencyKey: `${orderId}:capture`,
        orderId,
        transactionId: auth.transactionId,
        amountCents: 900,
      };
      const c1 = approved(await gateway.capture(capture));
      assert.deepEqual(await gateway.capture(capture), c1, "same key replays");
      const c2 = await gateway.capture({ ...capture, idempotencyKey: `${orderId}:capture:x` });
      assert.equal(c2.type, "declined", "a second capture under another key is refused");
      const v = await gateway.void({
        idempotencyKey: `${orderId}:void`,
        orderId,
        transactionId: auth.transactionId,
      });
      assert.equal(v.type, "declined", "a captured charge cannot be voided");
      approved(
        await gateway.refund({
          idempotencyKey: `${orderId}:refund`,
          orderId,
          transactionId: auth.transactionId,
          amountCents: 900,
        }),
      );
      assert.equal(ledger.captures(orderId).length, 1);
      assert.equal(ledger.voids(orderId).length, 0);
      assert.equal(ledger.refunds(orderId).length, 1);
    });

    await t.step("void releases a held authorization once", async () => {
      const orderId = order();
      const auth = approved(await gateway.authorize(authorization(orderId, "tok_visa", 900)));
      const req = { idempotencyKey: `${orderId}:void`, orderId, transactionId: auth.transactionId };
      const v = approved(await gateway.void(req));
      assert.deepEqual(await gateway.void(req), v);
      const capture = await gateway.capture({
        idempotencyKey: `${orderId}:capture`,
        orderId,
        transactionId: auth.transactionId,
        amountCents: 900,
      });
      assert.equal(capture.type, "declined");
      assert.equal(ledger.voids(orderId).length, 1);
      assert.equal(ledger.captures(orderId).length, 0);
    });

    await t.step("an outage silences every operation", async () => {
      const orderId = order();
      sim.setGatewayDown(true);
      const controller = new AbortController();
      const p = gateway.authorize(authorization(orderId, "tok_visa", 100), {
        signal: controller.signal,
      });
      assert.equal(await silentFor(p, controller, 80), "silent");
      sim.setGatewayDown(false);
      assert.equal(ledger.authorizations(orderId).length, 0);
    });

    await t.step("the card reader follows the plant", () => {
      const seen: boolean[] = [];
      const off = sim.reader.onChange((online) => seen.push(online));
      assert.equal(sim.reader.online(), true);
      plant.set("cardReaderOffline", true);
      assert.equal(sim.reader.online(), false);
      plant.set("estop", true);
      plant.set("estop", false);
      plant.set("cardReaderOffline", false);
      off();
      plant.set("cardReaderOffline", true);
      plant.set("cardReaderOffline", false);
      assert.deepEqual(seen, [false, true]);
    });

    await t.step("the cash acceptor pays out once per key and records it", async () => {
      const orderId = order();
      assert.ok(sim.cash.acceptedCents().includes(500));
      const req = {
        idempotencyKey: `${orderId}:change`,
        orderId,
        amountCents: 250,
        why: "CHANGE" as const,
      };
      await sim.cash.payOut(req);
      await sim.cash.payOut(req);
      assert.deepEqual(ledger.payouts(orderId).map((p) => [p.amountCents, p.why]), [[
        250,
        "CHANGE",
      ]]);
      sim.setPayoutJammed(true);
      await assert.rejects(
        sim.cash.payOut({ ...req, idempotencyKey: `${orderId}:return`, why: "RETURN" }),
        /jammed/,
      );
      sim.setPayoutJammed(false);
    });

    await t.step("the ledger file can be read by another connection", () => {
      const db = openJournal(ledgerPath);
      try {
        const other = openSimLedger(db);
        const orderIds = db.prepare("SELECT DISTINCT order_id FROM sim_gateway_ledger").all();
        assert.ok(orderIds.length >= 3);
        const someOrder = (orderIds[0] as { order_id: string }).order_id;
        assert.deepEqual(other.authorizations(someOrder), ledger.authorizations(someOrder));
      } finally {
        db.close();
      }
    });
  } finally {
    sim.close();
    await Deno.remove(dir, { recursive: true });
  }
});
