/**
 * The ingestion test suite, run on each storage backend by
 * `ingest_postgres_test.ts` and `ingest_pglite_test.ts`.
 */
import assert from "node:assert/strict";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createSeededRandom } from "../../random/random.ts";
import { createLogger, silentLogger } from "../../log/log.ts";
import { createRealClock } from "../../clock/clock.ts";
import { sharedNatsUrl, waitFor } from "../../testing/nats.ts";
import {
  decodeFleetAlert,
  encodeFleetEvent,
  type FleetAlert,
  type FleetEvent,
  type FleetNames,
  fleetNames,
} from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { type Backend, openTestDatabase } from "../db/test_databases.ts";
import { createSimulatedFleet } from "./simulated_fleet.ts";
import {
  deleteFleetStreams,
  ensureIngestConsumer,
  type IngestWorker,
  type IngestWorkerOptions,
  startIngestWorker,
  WorkerCrash,
} from "./mod.ts";

interface Fixture {
  db: Database;
  nc: NatsConnection;
  names: FleetNames;
  workers: IngestWorker[];
  start(extra?: Partial<IngestWorkerOptions>): IngestWorker;
  publish(e: FleetEvent, msgID?: string | null): Promise<{ duplicate: boolean }>;
  count(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

async function fixture(backend: Backend): Promise<Fixture> {
  const test = await openTestDatabase(backend);
  const nc = await connect({ servers: sharedNatsUrl });
  const names = fleetNames(`ti${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`);
  // A short ack wait, so a crashed worker's batch comes back within the test.
  await ensureIngestConsumer(nc, names, { ackWaitMs: 1500 });
  const js = jetstream(nc);
  const workers: IngestWorker[] = [];
  return {
    db: test.db,
    nc,
    names,
    workers,
    start(extra = {}) {
      const w = startIngestWorker({
        db: test.db,
        nc,
        names,
        batchSize: 100,
        log: Deno.env.get("INGEST_LOG") ? createLogger({ clock: createRealClock() }) : silentLogger,
        maxBackoffMs: 500,
        ...extra,
      });
      workers.push(w);
      return w;
    },
    async publish(e, msgID = e.id) {
      const ack = await js.publish(
        names.event(e.machineId, e.kind),
        encodeFleetEvent(e),
        msgID ? { msgID } : {},
      );
      return { duplicate: ack.duplicate };
    },
    async count(sql, params = []) {
      const rows = await test.db.query<{ n: number }>(sql, params);
      return rows[0]!.n;
    },
    async close() {
      await Promise.all(workers.map((w) => w.stop()));
      await deleteFleetStreams(nc, names);
      await nc.close();
      await test.dispose();
    },
  };
}

/** Asserts every event of `events` (machines `prefix*`) is in its table exactly once. */
async function assertStoredOnce(f: Fixture, prefix: string, events: FleetEvent[]): Promise<void> {
  const like = `${prefix}%`;
  const of = (k: FleetEvent["kind"]) => events.filter((e) => e.kind === k);
  const distinct = (xs: string[]) => new Set(xs).size;
  const expected: Record<string, number> = {
    temperatures: of("temperature").length,
    metrics: of("metric").length,
    sales: of("sale").length,
    faults: of("fault").length,
    food_safety_log: of("discard").length,
    machine_status_log: of("machine").length,
    processed_events: of("alert").length,
    orders: distinct(events.flatMap((e) => (e.kind === "order" ? [e.order.orderId] : []))),
    payments: distinct(events.flatMap((e) => (e.kind === "payment" ? [e.payment.paymentId] : []))),
    cooking_sessions: distinct(
      events.flatMap((e) => (e.kind === "cooking" ? [e.session.sessionId] : [])),
    ),
  };
  for (const [table, n] of Object.entries(expected)) {
    assert.equal(
      await f.count(`SELECT count(*)::int AS n FROM ${table} WHERE machine_id LIKE $1`, [like]),
      n,
      table,
    );
  }
}

function mixedEvents(prefix: string, machines: number, count: number, seed: number): FleetEvent[] {
  let clockMs = 1_760_000_000_000;
  const sim = createSimulatedFleet(
    Array.from({ length: machines }, (_, i) => `${prefix}${i}`),
    createSeededRandom(seed),
    () => (clockMs += 7),
  );
  return Array.from({ length: count }, () => sim.next());
}

const applied = (f: Fixture) => f.workers.reduce((s, w) => s + w.stats().applied, 0);
const seen = (f: Fixture) =>
  f.workers.reduce((s, w) => s + w.stats().applied + w.stats().duplicates, 0);

function sale(machineId: string, id: string, ts = 1_760_000_000_000): FleetEvent {
  return {
    id,
    machineId,
    ts,
    kind: "sale",
    itemId: "101",
    priceCents: 150,
    soldAt: ts,
    source: "nats",
  };
}

/** A carousel alert as a fleet event, raised or cleared. */
export function alertEvent(
  machineId: string,
  id: string,
  type: "LOW_INVENTORY" | "PAYMENT_ISSUE",
  resolved: boolean,
  ts: number,
): FleetEvent {
  return {
    id,
    machineId,
    ts,
    kind: "alert",
    component: "carousel",
    alert: {
      alertId: `a-${type}`,
      type,
      severity: "WARNING",
      message: `${type} ${resolved ? "cleared" : "raised"}`,
      resolved,
      createdAt: ts,
      resolvedAt: resolved ? ts : null,
    },
  };
}

/** The ingestion suite on `backend`; a test file per backend runs it. */
export function ingestionSuite(backend: Backend): void {
  Deno.test(`ingestion on ${backend}`, async (t) => {
    const f = await fixture(backend);
    try {
      await t.step("three workers store each of 1200 events exactly once", async () => {
        for (let i = 0; i < 3; i++) f.start();
        const events = mixedEvents("m", 12, 1200, 7);
        await Promise.all(events.map((e) => f.publish(e)));
        await waitFor("1200 applied", () => (applied(f) === 1200 ? true : undefined), 30_000);
        await assertStoredOnce(f, "m", events);
        // Every order row holds its latest status, whichever worker wrote last.
        const last = new Map<string, string>();
        for (const e of events) if (e.kind === "order") last.set(e.order.orderId, e.order.status);
        const rows = await f.db.query<{ order_id: string; status: string }>(
          "SELECT order_id, status FROM orders",
        );
        for (const r of rows) assert.equal(r.status, last.get(r.order_id), r.order_id);
        assert.equal(await f.count("SELECT count(*)::int AS n FROM machines"), 12);
      });

      await t.step("an event published twice is stored once", async () => {
        const e = sale("dup", crypto.randomUUID());
        const a = alertEvent("dup", crypto.randomUUID(), "PAYMENT_ISSUE", false, 1_760_000_000_000);
        for (const x of [e, a]) {
          assert.equal((await f.publish(x)).duplicate, false);
          // Same message id: JetStream drops it within its duplicate window.
          assert.equal((await f.publish(x)).duplicate, true);
          // No message id (as after the window): ingestion drops it.
          await f.publish(x, null);
          await f.publish(x, crypto.randomUUID());
        }
        const dups = () => f.workers.reduce((s, w) => s + w.stats().duplicates, 0);
        await waitFor("the four repeats consumed", () => (dups() >= 4 ? true : undefined));
        assert.equal(
          await f.count("SELECT count(*)::int AS n FROM sales WHERE sale_id = $1", [e.id]),
          1,
        );
        assert.equal(
          await f.count("SELECT sum(count)::int AS n FROM alerts WHERE machine_id = 'dup'"),
          1,
          "an alert repeated by redelivery is counted once",
        );
      });

      await t.step("poison messages go to the dead-letter stream with an alert", async () => {
        const alerts: FleetAlert[] = [];
        const sub = f.nc.subscribe(f.names.alerts("*"), {
          callback: (_err, msg) => {
            const d = decodeFleetAlert(msg.data);
            if (d.ok) alerts.push(d.value);
          },
        });
        const js = jetstream(f.nc);
        await js.publish(f.names.event("bad1", "sale"), new TextEncoder().encode("{not json"));
        await js.publish(
          f.names.event("bad1", "sale"),
          new TextEncoder().encode(JSON.stringify({ ...sale("bad1", "x1"), priceCents: -5 })),
        );
        await js.publish(
          f.names.event("bad1", "order"),
          new TextEncoder().encode(JSON.stringify(sale("bad1", "x2"))),
        );
        // Valid for the schema, refused by Postgres (a NUL cannot be stored in text).
        await f.publish({ ...sale("bad1", "x3"), itemId: "a\u0000b" } as FleetEvent);
        const after = sale("bad1", crypto.randomUUID());
        await f.publish(after);
        await waitFor(
          "the event after the poison stored",
          async () =>
            (await f.count("SELECT count(*)::int AS n FROM sales WHERE sale_id = $1", [after.id]))
              ? true
              : undefined,
          20_000,
        );
        const jsm = await jetstreamManager(f.nc);
        await waitFor(
          "four dead letters",
          async () =>
            (await jsm.streams.info(f.names.deadLetterStream)).state.messages === 4
              ? true
              : undefined,
        );
        const rows = await f.db.query<{ count: number; severity: string; message: string }>(
          `SELECT count, severity, message FROM alerts
            WHERE machine_id = 'bad1' AND alert_type = 'DEAD_LETTER' AND NOT resolved`,
        );
        assert.equal(rows.length, 1, "one open alert per machine and type");
        assert.equal(rows[0]!.count, 4);
        await waitFor(
          "the alert published for supervisors",
          () =>
            alerts.find((a) => a.machineId === "bad1" && a.type === "DEAD_LETTER")
              ? true
              : undefined,
        );
        sub.unsubscribe();
        const letter = await jsm.streams.getMessage(f.names.deadLetterStream, { seq: 1 });
        assert.equal(letter?.subject, f.names.deadLetter("bad1"));
        assert.ok(letter?.header.get("Fornax-Reason"));
        assert.equal(await f.count("SELECT count(*)::int AS n FROM sales WHERE sale_id = 'x3'"), 0);
      });

      await t.step("alerts: one open per machine and type, counted; resolve; reopen", async () => {
        const base = 1_760_000_100_000;
        await f.publish(alertEvent("al", crypto.randomUUID(), "LOW_INVENTORY", false, base));
        await f.publish(alertEvent("al", crypto.randomUUID(), "LOW_INVENTORY", false, base));
        await f.publish(alertEvent("al", crypto.randomUUID(), "PAYMENT_ISSUE", false, base + 1));
        await waitFor("two open alerts", async () =>
          (await f.count(
              "SELECT COALESCE(sum(count), 0)::int AS n FROM alerts WHERE machine_id = 'al'",
            )) === 3
            ? true
            : undefined);
        assert.equal(
          await f.count("SELECT count(*)::int AS n FROM alerts WHERE machine_id = 'al'"),
          2,
        );
        await f.publish(alertEvent("al", crypto.randomUUID(), "LOW_INVENTORY", true, base + 2));
        await waitFor("resolved", async () =>
          (await f.count(
              `SELECT count(*)::int AS n FROM alerts
                WHERE machine_id = 'al' AND alert_type = 'LOW_INVENTORY' AND resolved`,
            )) === 1
            ? true
            : undefined);
        await f.publish(alertEvent("al", crypto.randomUUID(), "LOW_INVENTORY", false, base + 3));
        await waitFor("reopened as a new alert", async () =>
          (await f.count(
              "SELECT count(*)::int AS n FROM alerts WHERE machine_id = 'al' AND NOT resolved",
            )) === 2
            ? true
            : undefined);
      });

      await t.step("an order's state only moves forward, whatever the arrival order", async () => {
        const orderId = crypto.randomUUID();
        const order = (status: "PAID" | "PENDING", ts: number): FleetEvent => ({
          id: crypto.randomUUID(),
          machineId: "fw",
          ts,
          orderId,
          kind: "order",
          order: {
            orderId,
            machineId: "fw",
            pizzaId: "margherita",
            status,
            totalAmountCents: 999,
            placedAt: 1_760_000_000_000,
            readyAt: null,
            dispensedAt: null,
          },
        });
        await f.publish(order("PAID", 1_760_000_002_000));
        await waitFor(
          "paid",
          async () =>
            (await f.count("SELECT count(*)::int AS n FROM orders WHERE order_id = $1", [orderId]))
              ? true
              : undefined,
        );
        const before = seen(f);
        await f.publish(order("PENDING", 1_760_000_001_000));
        await waitFor("late event processed", () => (seen(f) > before ? true : undefined));
        const rows = await f.db.query<{ status: string }>(
          "SELECT status FROM orders WHERE order_id = $1",
          [orderId],
        );
        assert.equal(rows[0]!.status, "PAID");
      });

      await t.step("events Postgres refuses in a big batch: the rest stored once", async () => {
        await Promise.all(f.workers.splice(0).map((w) => w.stop()));
        const jsm = await jetstreamManager(f.nc);
        const lettersBefore = (await jsm.streams.info(f.names.deadLetterStream)).state.messages;
        const good = Array.from({ length: 300 }, (_, i) => sale(`sp${i % 7}`, `sp-${i}`));
        const bad = [7, 211].map((i) => ({ ...sale("sp1", `bad-${i}`), itemId: "a\u0000b" }));
        const all: FleetEvent[] = [...good];
        all.splice(7, 0, bad[0]!);
        all.splice(211, 0, bad[1]!);
        for (const e of all) await f.publish(e);
        // One worker, one batch: the refused events sit among the good ones.
        const w = f.start({ batchSize: 500 });
        await waitFor(
          "the good stored, the bad dead-lettered",
          async () =>
            (await f.count("SELECT count(*)::int AS n FROM sales WHERE machine_id LIKE 'sp%'")) ===
                good.length &&
              (await jsm.streams.info(f.names.deadLetterStream)).state.messages ===
                lettersBefore + 2
              ? true
              : undefined,
          20_000,
        );
        assert.equal(w.stats().applied, good.length);
        assert.equal(w.stats().deadLetters, 2);
        assert.equal(
          await f.count("SELECT count(*)::int AS n FROM sales WHERE sale_id LIKE 'bad-%'"),
          0,
        );
      });

      for (const point of ["beforeCommit", "afterCommit"] as const) {
        await t.step(`a worker killed ${point} loses nothing and duplicates nothing`, async () => {
          await Promise.all(f.workers.splice(0).map((w) => w.stop()));
          let armed = true;
          const doomed = f.start({
            faults: {
              [point]: () => {
                if (!armed) return;
                armed = false;
                throw new WorkerCrash();
              },
            },
          });
          const prefix = `kill${point}`;
          const events = mixedEvents(prefix, 5, 150, point.length);
          await Promise.all(events.map((e) => f.publish(e)));
          await doomed.done;
          assert.equal(armed, false, "the fault fired");
          f.start();
          f.start();
          const counted = () =>
            f.count(
              "SELECT count(*)::int AS n FROM processed_events WHERE machine_id LIKE $1",
              [`${prefix}%`],
            );
          const alerts = events.filter((e) => e.kind === "alert").length;
          await waitFor(
            "redelivered and applied",
            async () =>
              (await f.count(
                    "SELECT count(*)::int AS n FROM temperatures WHERE machine_id LIKE $1",
                    [
                      `${prefix}%`,
                    ],
                  )) === events.filter((e) => e.kind === "temperature").length &&
                (await counted()) === alerts
                ? true
                : undefined,
            20_000,
          );
          // Redelivered messages finish as duplicates or fresh writes, never twice.
          await new Promise((r) => setTimeout(r, 500));
          await assertStoredOnce(f, prefix, events);
        });
      }
    } finally {
      await f.close();
    }
  });
}
