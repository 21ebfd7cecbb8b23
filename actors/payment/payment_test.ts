import assert from "node:assert/strict";
import { testActorContext, testConfig } from "../../testing/fixtures.ts";
import { connectTestBus, type TestBus, waitFor } from "../../testing/nats.ts";
import { findCardNumbers, findCardNumbersInFile } from "../../testing/card_numbers.ts";
import { type Journal, openJournal } from "../../journal/journal.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { createSimPayment, type SimPayment } from "../../hardware/sim/payment.ts";
import type { EventMessage, Result } from "../../protocol/define.ts";
import type { Payment } from "../../protocol/entities.ts";
import { alert } from "../../protocol/common.ts";
import * as payment from "../../protocol/payment.ts";
import type { ActorContext, RunningActor } from "../actor.ts";
import { type RetryPolicy, startPayment } from "./mod.ts";

/** Clock ms per wall ms: the 27 s of a gateway outage pass in under half a second. */
const speed = 100;
/** Request deadline in clock ms (10 s of wall time at this speed). */
const timeoutMs = 1_000_000;

const config = testConfig({ acceptedCents: [25, 100, 500, 1000, 2000] });

interface Harness {
  tb: TestBus;
  ctx: ActorContext;
  plant: SimPlant;
  sim: SimPayment;
  journal: Journal;
  journalPath: string;
  /** Every message published on `fornax.<machineId>.>`, raw. */
  wire: string[];
  changes: EventMessage<typeof payment.changed>[];
  alerts: EventMessage<(typeof alert)["payment"]>[];
  cashOuts: EventMessage<typeof payment.cashOut>[];
  readerEvents: boolean[];
  /** Requests a card authorization of `amountCents` (750 unless given) with `token`. */
  authorize(orderId: string, token: string, amountCents?: number): Promise<Result<Payment>>;
  start(): RunningActor;
  close(): Promise<void>;
}

async function harness(dir: string, latencyMs = 200, retry?: RetryPolicy): Promise<Harness> {
  const tb = await connectTestBus({ speed });
  const ctx = testActorContext(tb, config);
  const plant = new SimPlant(tb.clock);
  const sim = createSimPayment(plant, { ledgerPath: `${dir}/gateway.db`, latencyMs });
  const journalPath = `${dir}/journal.db`;
  const journal = openJournal(journalPath);
  const wire: string[] = [];
  const decoder = new TextDecoder();
  const h: Harness = {
    tb,
    ctx,
    plant,
    sim,
    journal,
    journalPath,
    wire,
    changes: [],
    alerts: [],
    cashOuts: [],
    readerEvents: [],
    authorize: (orderId, token, amountCents = 750) =>
      tb.bus.request(payment.authorize, { orderId, amountCents, method: "CARD", token }, {
        timeoutMs,
      }),
    start: () => startPayment(ctx, sim, { journal, ...(retry ? { retry } : {}) }),
    close: async () => {
      for (const off of offs) off();
      await tb.close();
      journal.close();
      sim.close();
    },
  };
  const offs = [
    tb.raw.subscribe(`fornax.${tb.machineId}.>`, (m) => wire.push(decoder.decode(m.data))),
    tb.bus.subscribe(payment.changed, tb.machineId, (m) => h.changes.push(m)),
    tb.bus.subscribe(alert.payment, tb.machineId, (m) => h.alerts.push(m)),
    tb.bus.subscribe(payment.cashOut, tb.machineId, (m) => h.cashOuts.push(m)),
    tb.bus.subscribe(
      payment.readerChanged,
      tb.machineId,
      (m) => h.readerEvents.push(m.cardReaderOnline),
    ),
  ];
  await tb.raw.flush();
  return h;
}

function value<T>(r: { ok: true; value: T } | { ok: false; error: unknown }): T {
  if (!r.ok) assert.fail(`Expected ok, got ${JSON.stringify(r.error)}`);
  return r.value;
}

function errorOf(r: { ok: boolean; error?: { code: string; message: string } }) {
  assert.equal(r.ok, false, "expected an error reply");
  return r.error!;
}

const order = () => crypto.randomUUID();

Deno.test("payment actor: cards, cash, refunds, reader, at most once", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-payment-" });
  const h = await harness(dir);
  const { bus } = h.tb;
  const actor = h.start();
  const { authorize } = h;
  const settle = (orderId: string) => bus.request(payment.settle, { orderId }, { timeoutMs });
  const refund = (orderId: string) =>
    bus.request(payment.refund, { orderId, reason: "customer cancelled" }, { timeoutMs });
  const insert = (orderId: string, denominationCents: number, amountCents = 750) =>
    bus.request(payment.insertCash, { orderId, amountCents, denominationCents }, { timeoutMs });
  const status = (orderId: string) => bus.request(payment.status, { orderId }, { timeoutMs });
  const settledOrder = order();

  try {
    await t.step("tok_visa is AUTHORIZED, then settle captures exactly once", async () => {
      const orderId = settledOrder;
      const auth = value(await authorize(orderId, "tok_visa"));
      assert.equal(auth.status, "AUTHORIZED");
      assert.equal(auth.last4, "4242");
      assert.ok(auth.transactionId);
      assert.equal(h.sim.ledger.captures(orderId).length, 0, "nothing charged before pickup");
      const done = value(await settle(orderId));
      assert.equal(done.status, "COMPLETED");
      assert.equal(h.sim.ledger.captures(orderId).length, 1);
      const again = value(await settle(orderId));
      assert.deepEqual(again, done, "a repeated settle gets the first result");
      assert.equal(h.sim.ledger.captures(orderId).length, 1);
      assert.equal(h.sim.ledger.calls(orderId, "capture").length, 1);
      await waitFor(
        "COMPLETED event",
        () =>
          h.changes.some((c) => c.orderId === orderId && c.payment.status === "COMPLETED") ||
          undefined,
      );
    });

    await t.step("refund after settle is CONFLICT", async () => {
      const e = errorOf(await refund(settledOrder));
      assert.equal(e.code, "CONFLICT");
      assert.match(e.message, /settled/);
      assert.equal(h.sim.ledger.voids(settledOrder).length, 0);
      assert.equal(value(await status(settledOrder)).status, "COMPLETED");
    });

    await t.step(
      "tok_chargeDeclined is FAILED after one gateway call; another card may follow",
      async () => {
        const orderId = order();
        const p = value(await authorize(orderId, "tok_chargeDeclined"));
        assert.equal(p.status, "FAILED");
        assert.equal(h.sim.ledger.calls(orderId).length, 1);
        assert.equal(errorOf(await settle(orderId)).code, "CONFLICT");
        const second = value(await authorize(orderId, "tok_mastercard"));
        assert.equal(second.status, "AUTHORIZED");
        assert.equal(second.last4, "4444");
        assert.notEqual(second.paymentId, p.paymentId);
        assert.equal(h.sim.ledger.authorizations(orderId).length, 1);
      },
    );

    await t.step("tok_timeout is AUTHORIZED after a retry", async () => {
      const orderId = order();
      const p = value(await authorize(orderId, "tok_timeout"));
      assert.equal(p.status, "AUTHORIZED");
      assert.equal(h.sim.ledger.calls(orderId, "authorize").length, 2);
      assert.equal(h.sim.ledger.authorizations(orderId).length, 1);
    });

    await t.step("tok_gatewayDown is PENDING after 4 attempts, with an alert", async () => {
      const orderId = order();
      const p = value(await authorize(orderId, "tok_gatewayDown"));
      assert.equal(p.status, "PENDING");
      assert.equal(h.sim.ledger.calls(orderId).length, 4);
      const a = await waitFor("payment alert", () => h.alerts.find((a) => a.orderId === orderId));
      assert.equal(a.type, "PAYMENT_ISSUE");
      assert.equal(a.severity, "WARNING");
      // A repeat returns the pending payment; it does not start again.
      assert.equal(value(await authorize(orderId, "tok_gatewayDown")).status, "PENDING");
      assert.equal(h.sim.ledger.calls(orderId).length, 4);
    });

    await t.step("concurrent duplicate authorize requests make one authorization", async () => {
      const orderId = order();
      // tok_timeout keeps the first request in flight for the 5 s call deadline.
      const replies = await Promise.all(
        Array.from({ length: 5 }, () => authorize(orderId, "tok_timeout")),
      );
      const payments = replies.map(value);
      assert.ok(payments.every((p) => p.status === "AUTHORIZED"));
      assert.equal(new Set(payments.map((p) => p.paymentId)).size, 1);
      assert.equal(h.sim.ledger.authorizations(orderId).length, 1);
      assert.equal(h.sim.ledger.calls(orderId, "authorize").length, 2, "first try and one retry");
      // Concurrent settles join one capture, too.
      const settled = (await Promise.all([settle(orderId), settle(orderId), settle(orderId)]))
        .map(value);
      assert.ok(settled.every((p) => p.status === "COMPLETED"));
      assert.equal(h.sim.ledger.calls(orderId, "capture").length, 1);
    });

    await t.step("refund before settle is VOIDED exactly once; settle then CONFLICT", async () => {
      const orderId = order();
      value(await authorize(orderId, "tok_visa"));
      const voided = value(await refund(orderId));
      assert.equal(voided.status, "VOIDED");
      assert.deepEqual(value(await refund(orderId)), voided, "a repeated refund gets the first");
      assert.equal(h.sim.ledger.voids(orderId).length, 1);
      assert.equal(h.sim.ledger.calls(orderId, "void").length, 1);
      const e = errorOf(await settle(orderId));
      assert.equal(e.code, "CONFLICT");
      assert.equal(h.sim.ledger.captures(orderId).length, 0);
    });

    await t.step("a refund while the authorization is in flight waits, then voids it", async () => {
      const orderId = order();
      const auth = authorize(orderId, "tok_timeout");
      await waitFor("authorize call", () => h.sim.ledger.calls(orderId).length > 0 || undefined);
      const [a, r] = await Promise.all([auth, refund(orderId)]);
      assert.equal(value(a).status, "AUTHORIZED");
      assert.equal(value(r).status, "VOIDED");
      assert.equal(h.sim.ledger.voids(orderId).length, 1);
    });

    await t.step("refund of a PENDING card payment voids what the gateway may hold", async () => {
      const orderId = order();
      h.sim.setGatewayDown(true);
      assert.equal(value(await authorize(orderId, "tok_visa")).status, "PENDING");
      h.sim.setGatewayDown(false);
      const r = value(await refund(orderId));
      assert.equal(r.status, "VOIDED");
      assert.equal(h.sim.ledger.authorizations(orderId).length, 0);
      assert.equal(h.sim.ledger.captures(orderId).length, 0);
    });

    await t.step("cash: $5 + $5 for $7.50 is AUTHORIZED with 250 change paid out", async () => {
      const orderId = order();
      const first = value(await insert(orderId, 500));
      assert.equal(first.status, "PENDING");
      assert.equal(first.insertedCents, 500);
      const paid = value(await insert(orderId, 500));
      assert.equal(paid.status, "AUTHORIZED");
      assert.equal(paid.method, "CASH");
      assert.equal(paid.insertedCents, 1000);
      assert.equal(paid.changeCents, 250);
      const out = await waitFor("cash_out", () => h.cashOuts.find((c) => c.orderId === orderId));
      assert.deepEqual([out.amountCents, out.why], [250, "CHANGE"]);
      assert.deepEqual(h.sim.ledger.payouts(orderId).map((p) => [p.amountCents, p.why]), [
        [250, "CHANGE"],
      ]);
      const more = errorOf(await insert(orderId, 100));
      assert.equal(more.code, "CONFLICT", "no more cash once paid");
      assert.equal(value(await settle(orderId)).status, "COMPLETED");
      assert.equal(errorOf(await refund(orderId)).code, "CONFLICT");
    });

    await t.step(
      "a bad denomination is BAD_REQUEST naming the accepted ones; nothing changes",
      async () => {
        const orderId = order();
        const e = errorOf(await insert(orderId, 300));
        assert.equal(e.code, "BAD_REQUEST");
        assert.match(e.message, /25, 100, 500, 1000, 2000/);
        assert.equal(errorOf(await status(orderId)).code, "NOT_FOUND");
        value(await insert(orderId, 100));
        assert.equal(errorOf(await insert(orderId, 5)).code, "BAD_REQUEST");
        const p = value(await status(orderId));
        assert.equal(p.insertedCents, 100);
        assert.equal(p.status, "PENDING");
      },
    );

    await t.step("cancelling cash before enough returns what was inserted", async () => {
      const orderId = order();
      value(await insert(orderId, 500));
      value(await insert(orderId, 100));
      const r = value(await refund(orderId));
      assert.equal(r.status, "VOIDED");
      const out = await waitFor("cash_out", () => h.cashOuts.find((c) => c.orderId === orderId));
      assert.deepEqual([out.amountCents, out.why], [600, "RETURN"]);
      assert.deepEqual(value(await refund(orderId)), r);
      assert.deepEqual(h.sim.ledger.payouts(orderId).map((p) => [p.amountCents, p.why]), [
        [600, "RETURN"],
      ]);
      assert.equal(errorOf(await insert(orderId, 100)).code, "CONFLICT");
    });

    await t.step(
      "refunding escrowed cash returns the price (the change is already out)",
      async () => {
        const orderId = order();
        value(await insert(orderId, 1000));
        assert.equal(value(await refund(orderId)).status, "VOIDED");
        assert.deepEqual(h.sim.ledger.payouts(orderId).map((p) => [p.amountCents, p.why]), [
          [250, "CHANGE"],
          [750, "RETURN"],
        ]);
      },
    );

    await t.step("reader offline: card is CONFLICT, cash still works", async () => {
      await waitFor("initial reader event", () => h.readerEvents[0] === true || undefined);
      h.plant.set("cardReaderOffline", true);
      await waitFor("offline event", () => h.readerEvents.at(-1) === false || undefined);
      assert.equal(actor.state(), "cashOnly");
      const r = value(await bus.request(payment.reader, {}, { timeoutMs }));
      assert.deepEqual(r, { cardReaderOnline: false, acceptedCents: config.acceptedCents });
      const orderId = order();
      const e = errorOf(await authorize(orderId, "tok_visa"));
      assert.equal(e.code, "CONFLICT");
      assert.equal(e.message, "card reader offline: cash only");
      assert.equal(h.sim.ledger.calls(orderId).length, 0);
      assert.equal(value(await insert(orderId, 1000)).status, "AUTHORIZED");
      h.plant.set("cardReaderOffline", false);
      await waitFor("online event", () => h.readerEvents.at(-1) === true || undefined);
      assert.equal(actor.state(), "cardsAccepted");
      assert.equal(
        value(await bus.request(payment.reader, {}, { timeoutMs })).cardReaderOnline,
        true,
      );
    });

    await t.step(
      "a capture the gateway never answered stays owed and is done once later",
      async () => {
        const orderId = order();
        value(await authorize(orderId, "tok_visa"));
        h.sim.setGatewayDown(true);
        const e = errorOf(await settle(orderId));
        assert.equal(e.code, "UNAVAILABLE");
        await waitFor("owed alert", () => h.alerts.find((a) => a.orderId === orderId));
        assert.equal(errorOf(await refund(orderId)).code, "CONFLICT", "the pizza was taken");
        h.sim.setGatewayDown(false);
        // The sweeper (every 60 s of clock) re-issues it under the same key.
        await waitFor("capture re-issued", async () => {
          const r = await status(orderId);
          return r.ok && r.value.status === "COMPLETED" || undefined;
        });
        assert.equal(value(await settle(orderId)).status, "COMPLETED");
        assert.equal(h.sim.ledger.captures(orderId).length, 1);
      },
    );

    await t.step(
      "change a jammed dispenser could not pay stays owed and is paid once later",
      async () => {
        const orderId = order();
        h.sim.setPayoutJammed(true);
        const p = value(await insert(orderId, 2000));
        assert.equal(p.status, "AUTHORIZED", "the cash is escrowed even without change");
        assert.equal(p.changeCents, 1250);
        await waitFor("change alert", () => h.alerts.find((a) => a.orderId === orderId));
        h.sim.setPayoutJammed(false);
        const out = await waitFor(
          "change paid",
          () => h.cashOuts.find((c) => c.orderId === orderId),
        );
        assert.deepEqual([out.amountCents, out.why], [1250, "CHANGE"]);
        assert.deepEqual(h.sim.ledger.payouts(orderId).map((p) => [p.amountCents, p.why]), [
          [1250, "CHANGE"],
        ]);
      },
    );

    await t.step("unknown orders are NOT_FOUND", async () => {
      const orderId = order();
      assert.equal(errorOf(await settle(orderId)).code, "NOT_FOUND");
      assert.equal(errorOf(await refund(orderId)).code, "NOT_FOUND");
      assert.equal(errorOf(await status(orderId)).code, "NOT_FOUND");
      assert.ok(actor.alive());
    });

    await t.step("no card number in the journal, the logs or anything published", async () => {
      await h.tb.raw.flush();
      const files = [h.journalPath, `${h.journalPath}-wal`];
      for (const f of files) {
        const found = await findCardNumbersInFile(f).catch(() => []);
        assert.deepEqual(found, [], `card number in ${f}`);
      }
      assert.deepEqual(findCardNumbers(h.tb.logLines.join("\n")), []);
      assert.deepEqual(findCardNumbers(h.wire.join("\n")), []);
      assert.ok(h.wire.length > 50, "the wire was recorded");
      // Tokens are neither logged nor published (they appear only in the requests).
      assert.ok(!h.tb.logLines.some((l) => l.includes("tok_")));
      assert.ok(!h.changes.some((c) => JSON.stringify(c).includes("tok_")));
      const journalText = new TextDecoder("latin1").decode(await Deno.readFile(h.journalPath));
      assert.ok(!journalText.includes("tok_"), "no token in the journal");
    });
  } finally {
    await actor.stop();
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("payment actor: recovery re-issues owed operations once", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-payment-rec-" });
  // A slow gateway (30 s, 300 ms of wall time), so the actor can be killed
  // while a call is on the wire.
  const h = await harness(dir, 30_000, { callTimeoutMs: 60_000, backoffMs: [1_000, 2_000, 4_000] });
  const { bus } = h.tb;
  let actor = h.start();
  const started = (key: string) =>
    (h.journal.prepare("SELECT state FROM payment_ops WHERE idempotency_key = ?").get(key) as
      | { state: string }
      | undefined)?.state;
  try {
    await t.step("an authorization the gateway made before the kill is recovered", async () => {
      const orderId = order();
      void h.authorize(orderId, "tok_visa").catch(() => {});
      await waitFor(
        "gateway authorization",
        () => h.sim.ledger.authorizations(orderId).length === 1 || undefined,
      );
      await actor.stop(); // the kill: the answer is lost, the intent row stays
      assert.equal(started(`${orderId}:authorize`), "STARTED");
      actor = h.start();
      const p = await waitFor("recovered authorization", async () => {
        const r = await bus.request(payment.status, { orderId }, { timeoutMs });
        return r.ok && r.value.status === "AUTHORIZED" ? r.value : undefined;
      });
      assert.equal(p.last4, "4242");
      assert.equal(started(`${orderId}:authorize`), "DONE");
      assert.equal(h.sim.ledger.authorizations(orderId).length, 1);
      assert.equal(h.sim.ledger.calls(orderId, "authorize").length, 2);
    });

    await t.step(
      "a capture left STARTED is completed on restart with one ledger entry",
      async () => {
        const orderId = order();
        const auth = await h.authorize(orderId, "tok_visa");
        assert.equal(value(auth).status, "AUTHORIZED");
        void bus.request(payment.settle, { orderId }, { timeoutMs }).catch(() => {});
        await waitFor(
          "capture call",
          () => h.sim.ledger.captures(orderId).length === 1 || undefined,
        );
        await actor.stop();
        assert.equal(started(`${orderId}:capture`), "STARTED");
        actor = h.start();
        // A settle during recovery joins the re-issued capture.
        const done = value(await bus.request(payment.settle, { orderId }, { timeoutMs }));
        assert.equal(done.status, "COMPLETED");
        assert.equal(started(`${orderId}:capture`), "DONE");
        assert.equal(h.sim.ledger.captures(orderId).length, 1);
        assert.equal(h.sim.ledger.calls(orderId, "capture").length, 2);
      },
    );

    await t.step("an authorization that never reached the gateway fails on restart", async () => {
      const orderId = order();
      h.sim.setGatewayDown(true);
      void h.authorize(orderId, "tok_visa").catch(() => {});
      await waitFor("authorize call", () => h.sim.ledger.calls(orderId).length > 0 || undefined);
      await actor.stop();
      h.sim.setGatewayDown(false);
      actor = h.start();
      const p = await waitFor("recovered payment", async () => {
        const r = await bus.request(payment.status, { orderId }, { timeoutMs });
        return r.ok && r.value.status !== "PENDING" ? r.value : undefined;
      });
      assert.equal(p.status, "FAILED", "without the token nothing can be held: FAILED");
      assert.equal(h.sim.ledger.authorizations(orderId).length, 0);
    });
  } finally {
    await actor.stop();
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
