import assert from "node:assert/strict";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connectTestBus, startPrivateNats, waitFor } from "../../testing/nats.ts";
import { openJournal } from "../../journal/journal.ts";
import { createCryptoRandom } from "../../random/random.ts";
import type { ActorContext } from "../actor.ts";
import type { OrderView } from "../../protocol/order.ts";
import * as orderP from "../../protocol/order.ts";
import * as ovenP from "../../protocol/oven.ts";
import * as supervisorP from "../../protocol/supervisor.ts";
import { alert } from "../../protocol/common.ts";
import * as syncP from "../../protocol/sync.ts";
import {
  decodeFleetEvent,
  encodeFleetEvent,
  fleet,
  type FleetEvent,
} from "../../protocol/fleet.ts";
import { ensureFleetStreams } from "../../cloud/ingest/stream.ts";
import { Outbox, startSync } from "./mod.ts";
import { testConfig, testPizza } from "../../testing/fixtures.ts";

const config = testConfig({
  version: "cfg-7",
  menu: [testPizza({ priceCents: 999 })],
  lowStockThreshold: 2,
});

function orderView(orderId: string, machineId: string, ts: number): OrderView {
  return {
    orderId,
    machineId,
    pizzaId: "margherita",
    status: "PAID",
    totalAmountCents: 999,
    placedAt: ts,
    readyAt: null,
    dispensedAt: null,
    pickupCode: "1234",
    queuePosition: 1,
    estimatedReadyAt: null,
    pickupLocked: false,
    payment: null,
  };
}

/** Every event in the fleet stream, in stream order. */
async function streamEvents(nc: NatsConnection): Promise<FleetEvent[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(fleet.stream);
  const out: FleetEvent[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(fleet.stream, { seq }).catch(() => null);
    if (!m) continue;
    const d = decodeFleetEvent(m.data);
    assert.ok(d.ok, `stream message ${seq} decodes`);
    assert.equal(m.subject, fleet.event(d.value.machineId, d.value.kind));
    out.push(d.value);
  }
  return out;
}

Deno.test("sync actor: outbox to JetStream, through an uplink outage", async (t) => {
  // The machine's bus stays up (the shared server: the machine's local NATS);
  // the uplink to the fleet's JetStream is a private server we stop and start.
  const uplink = await startPrivateNats();
  const tb = await connectTestBus();
  const cloud = await connect({ servers: uplink.url });
  const link = await connect({
    servers: uplink.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  const dir = await Deno.makeTempDir({ prefix: "fornax-sync-" });
  const journal = openJournal(join(dir, "journal.db"));
  const ctx: ActorContext = {
    bus: tb.bus,
    clock: tb.clock,
    random: createCryptoRandom(),
    log: tb.log,
    config,
  };
  const options = { journal, nc: link, publishTimeoutMs: 800, heartbeatMs: 60_000 };
  await ensureFleetStreams(cloud, fleet);
  let sync = startSync(ctx, options);
  const status = async () => {
    const r = await tb.bus.request(syncP.status, {}, { timeoutMs: 3000 });
    assert.ok(r.ok, JSON.stringify(r));
    return r.value;
  };
  const published: string[] = [];
  const publishOrder = () => {
    const orderId = crypto.randomUUID();
    const msg = tb.bus.publish(orderP.updated, {
      order: orderView(orderId, tb.machineId, tb.clock.now()),
    }, orderId);
    published.push(msg.id);
  };
  try {
    await t.step(
      "bus events become fleet events, each once, temperatures downsampled",
      async () => {
        publishOrder();
        for (let i = 0; i < 5; i++) {
          tb.bus.publish(ovenP.temperature, {
            temperatureC: 200 + i,
            targetC: 220,
            heaterPct: 80,
            state: "preheating",
          });
        }
        const a = tb.bus.publish(alert.oven, {
          alertId: "oven-1",
          type: "TEMPERATURE_ISSUE",
          severity: "WARNING",
          message: "Slow to heat",
          resolved: false,
          createdAt: tb.clock.now(),
          resolvedAt: null,
        });
        tb.bus.publish(supervisorP.machine, {
          status: "OPERATIONAL",
          reason: null,
          cashOnly: false,
          maintenance: false,
        });
        await waitFor("delivered", async () => {
          const s = await status();
          return s.sentTotal >= 4 && s.outboxDepth === 0 ? s : undefined;
        });
        const events = await streamEvents(cloud);
        const kinds = events.map((e) => e.kind).sort();
        assert.deepEqual(kinds, ["alert", "heartbeat", "machine", "order", "temperature"]);
        const order = events.find((e) => e.kind === "order")!;
        assert.equal(order.id, published[0]);
        assert.ok(order.kind === "order" && !("pickupCode" in order.order), "no pickup code");
        const al = events.find((e) => e.kind === "alert")!;
        assert.ok(al.kind === "alert" && al.component === "oven" && al.id === a.id);
        const hb = events.find((e) => e.kind === "heartbeat")!;
        assert.ok(hb.kind === "heartbeat" && hb.configVersion === "cfg-7");
        const s = await status();
        assert.equal(s.online, true);
        assert.ok(s.lastAckTs !== null);
      },
    );

    await t.step("with the uplink down the outbox keeps every event", async () => {
      await uplink.stop();
      for (let i = 0; i < 40; i++) publishOrder();
      const s = await waitFor("queued and offline", async () => {
        const s = await status();
        return s.outboxDepth === 40 && !s.online ? s : undefined;
      }, 15_000);
      assert.equal(s.state, "waiting");
      assert.ok(s.lastError);
    });

    await t.step("the outbox survives a restart of the actor while offline", async () => {
      await sync.stop();
      sync = startSync(ctx, options);
      const s = await status();
      assert.equal(s.outboxDepth, 40);
    });

    await t.step("when the uplink returns, everything is delivered exactly once", async () => {
      await uplink.start();
      await waitFor("drained", async () => {
        const s = await status();
        return s.outboxDepth === 0 && s.online ? s : undefined;
      }, 20_000);
      const events = await streamEvents(cloud);
      const orders = events.filter((e) => e.kind === "order").map((e) => e.id);
      assert.equal(orders.length, 41, "41 order events in the stream");
      assert.equal(new Set(orders).size, 41, "no duplicates");
      assert.deepEqual(new Set(orders), new Set(published));
      // In the order they happened.
      assert.deepEqual(orders, published);
    });

    await t.step(
      "an event published before a crash but not yet deleted is not doubled",
      async () => {
        await sync.stop();
        // As if the last process published this row and died before deleting it.
        const e: FleetEvent = {
          id: crypto.randomUUID(),
          machineId: tb.machineId,
          ts: tb.clock.now(),
          kind: "metric",
          name: "crash_probe",
          value: 1,
          labels: null,
        };
        const body = encodeFleetEvent(e);
        new Outbox(journal).add({
          eventId: e.id,
          kind: e.kind,
          subject: fleet.event(e.machineId, e.kind),
          body: new TextDecoder().decode(body),
          createdAt: tb.clock.now(),
        });
        await jetstream(cloud).publish(fleet.event(e.machineId, e.kind), body, { msgID: e.id });
        sync = startSync(ctx, options);
        await waitFor("drained", async () => (await status()).outboxDepth === 0 ? true : undefined);
        const probes = (await streamEvents(cloud)).filter((x) => x.id === e.id);
        assert.equal(probes.length, 1);
      },
    );
  } finally {
    await sync.stop();
    journal.close();
    await link.close();
    await cloud.close();
    await tb.close();
    await uplink.dispose();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
