import assert from "node:assert/strict";
import { connectTestBus, waitFor } from "../testing/nats.ts";
import { openJournal } from "../journal/journal.ts";
import { createCryptoRandom } from "../random/random.ts";
import { silentLogger } from "../log/log.ts";
import * as orderP from "../protocol/order.ts";
import * as paymentP from "../protocol/payment.ts";
import * as carouselP from "../protocol/carousel.ts";
import * as ovenP from "../protocol/oven.ts";
import * as supervisorP from "../protocol/supervisor.ts";
import { alert } from "../protocol/common.ts";
import { fleetNames } from "../protocol/fleet.ts";
import { startSync } from "../actors/sync/mod.ts";
import { openTestDatabase } from "./db/test_databases.ts";
import { testConfig, testPizza } from "../testing/fixtures.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./ingest/mod.ts";

const config = testConfig({
  version: "cfg-e2e",
  menu: [testPizza({ priceCents: 999 })],
  lowStockThreshold: 2,
});

Deno.test("a machine's bus events land in Postgres through sync and ingestion", async () => {
  const test = await openTestDatabase("postgres");
  const tb = await connectTestBus();
  const names = fleetNames(`te${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
  const journal = openJournal(":memory:");
  await ensureIngestConsumer(tb.raw.nc, names);
  const worker = startIngestWorker({ db: test.db, nc: tb.raw.nc, names, log: silentLogger });
  const sync = startSync(
    { bus: tb.bus, clock: tb.clock, random: createCryptoRandom(), log: tb.log, config },
    { journal, nc: tb.raw.nc, names },
  );
  const m = tb.machineId;
  const one = async <T>(sql: string) =>
    await waitFor(sql, async () => (await test.db.query<T>(sql, [m]))[0]);
  try {
    const now = tb.clock.now();
    const orderId = crypto.randomUUID();
    tb.bus.publish(orderP.updated, {
      order: {
        orderId,
        machineId: m,
        pizzaId: "margherita",
        status: "PAID",
        totalAmountCents: 999,
        paymentMethod: "CARD",
        placedAt: now,
        readyAt: null,
        dispensedAt: null,
        pickupCode: "4321",
        queuePosition: 1,
        estimatedReadyAt: null,
        pickupLocked: false,
        payment: null,
      },
    }, orderId);
    tb.bus.publish(paymentP.changed, {
      payment: {
        paymentId: "pay-1",
        orderId,
        amountCents: 999,
        method: "CARD",
        status: "AUTHORIZED",
        transactionId: "tx-1",
        last4: "4242",
        insertedCents: 0,
        changeCents: 0,
        gatewayResponse: { approved: true },
        processedAt: now,
      },
    }, orderId);
    tb.bus.publish(carouselP.changed, {
      inventory: {
        items: [{
          itemId: "it-1",
          machineId: m,
          pizzaId: "margherita",
          quantity: 1,
          storageSlot: 0,
          expiresAt: now + 86_400_000,
          addedAt: now,
        }],
        available: { margherita: 1 },
        reservations: [],
        storageTempC: 3.5,
        salesStopped: false,
        stopReason: null,
      },
    });
    tb.bus.publish(ovenP.temperature, {
      temperatureC: 219,
      targetC: 220,
      heaterPct: 40,
      state: "holding",
    });
    tb.bus.publish(ovenP.cooked, {
      orderId,
      session: {
        sessionId: "s-1",
        orderId,
        machineId: m,
        startTemperatureC: 215,
        targetTemperatureC: 220,
        currentTemperatureC: 219,
        estimatedCompletion: now,
        timeRemainingMs: 0,
        status: "COMPLETE",
        startedAt: now - 240_000,
        completedAt: now,
      },
    }, orderId);
    tb.bus.publish(alert.carousel, {
      alertId: "c-1",
      type: "LOW_INVENTORY",
      severity: "WARNING",
      message: "Margherita low",
      resolved: false,
      createdAt: now,
      resolvedAt: null,
    });
    tb.bus.publish(supervisorP.machine, {
      status: "DEGRADED",
      reason: "card reader offline",
      cashOnly: true,
      maintenance: false,
    });

    const order = await one<{ status: string; total_amount_cents: number }>(
      "SELECT status, total_amount_cents FROM orders WHERE machine_id = $1",
    );
    assert.deepEqual(order, { status: "PAID", total_amount_cents: 999 });
    const pay = await one<{ status: string; last4: string }>(
      "SELECT status, last4 FROM payments WHERE machine_id = $1",
    );
    assert.deepEqual(pay, { status: "AUTHORIZED", last4: "4242" });
    const stock = await one<{ item_id: string; quantity: number }>(
      "SELECT item_id, quantity FROM inventory_items WHERE machine_id = $1",
    );
    assert.deepEqual(stock, { item_id: "it-1", quantity: 1 });
    const level = await one<{ quantity: number }>(
      "SELECT quantity FROM inventory_levels WHERE machine_id = $1 AND item_id = 'margherita'",
    );
    assert.equal(level.quantity, 1);
    const temp = await one<{ temp_c: number }>(
      "SELECT temp_c FROM temperatures WHERE machine_id = $1 AND sensor = 'oven'",
    );
    assert.equal(temp.temp_c, 219);
    const cook = await one<{ cook_time_ms: number }>(
      "SELECT cook_time_ms FROM cooking_sessions WHERE machine_id = $1",
    );
    assert.equal(cook.cook_time_ms, 240_000);
    const al = await one<{ alert_type: string; component: string }>(
      "SELECT alert_type, component FROM alerts WHERE machine_id = $1",
    );
    assert.deepEqual(al, { alert_type: "LOW_INVENTORY", component: "carousel" });
    const machine = await waitFor("status and reported config", async () => {
      const rows = await test.db.query<{ status: string; reported_config_version: string | null }>(
        "SELECT status, reported_config_version FROM machines WHERE machine_id = $1",
        [m],
      );
      const r = rows[0];
      return r && r.status === "DEGRADED" && r.reported_config_version ? r : undefined;
    });
    assert.equal(machine.reported_config_version, "cfg-e2e");
    assert.equal(worker.stats().deadLetters, 0);
  } finally {
    await sync.stop();
    await worker.stop();
    await deleteFleetStreams(tb.raw.nc, names);
    journal.close();
    await tb.close();
    await test.dispose();
  }
});
