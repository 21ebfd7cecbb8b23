import assert from "node:assert/strict";
import { createRealClock } from "../../clock/clock.ts";
import { silentLogger } from "../../log/log.ts";
import { waitFor } from "../../testing/nats.ts";
import { backends } from "../db/test_databases.ts";
import { addMachine } from "../db/machines.ts";
import { listAlerts, raiseCloudAlert } from "../admin/alerts.ts";
import { listMachines } from "../admin/fleet.ts";
import { cloudFixture, ev, store } from "../api/test_fixture.ts";
import { sweepConnectivity } from "./connectivity.ts";
import { sweepConditions } from "./conditions.ts";
import { detectAnomalies } from "./anomalies.ts";
import { predictRestock } from "./restock.ts";
import { msUntilHourUtc, startMonitor } from "./monitor.ts";

const minute = 60_000;
const day = 24 * 60 * minute;

for (const backend of backends) {
  Deno.test(`alerts and monitoring jobs on ${backend}`, async (t) => {
    const f = await cloudFixture({ backend });
    const { db } = f;
    const open = (machineId: string) => listAlerts(db, { machineId, resolved: false });
    try {
      await t.step(
        "20 identical alerts at once, same millisecond: one open alert, count 20",
        async () => {
          await addMachine(db, "dup-1");
          const atMs = Date.now();
          const opened = await Promise.all(
            Array.from({ length: 20 }, () =>
              raiseCloudAlert(db, {
                machineId: "dup-1",
                type: "EQUIPMENT_FAILURE",
                severity: "WARNING",
                message: "arm stalls",
                atMs,
              })),
          );
          assert.equal(opened.filter((a) => a !== null).length, 1, "opened once");
          const alerts = await open("dup-1");
          assert.equal(alerts.length, 1);
          assert.equal(alerts[0]!.count, 20);
          assert.equal(alerts[0]!.firstSeenAt, atMs);
          assert.equal(alerts[0]!.lastSeenAt, atMs);
        },
      );

      await t.step(
        "20 machine alert events in concurrent batches: one open alert, count 20",
        async () => {
          const ts = Date.now();
          await Promise.all(
            Array.from({ length: 20 }, () => store(db, [ev.alert("dup-2", "FOOD_SAFETY", ts)])),
          );
          const alerts = await open("dup-2");
          assert.equal(alerts.length, 1);
          assert.equal(alerts[0]!.count, 20);
        },
      );

      await t.step(
        "storage above 5 °C for 10 min alerts once per breach, from the series",
        async () => {
          const now = Date.now();
          const series = (machineId: string, temps: number[]) =>
            temps.map((c, i) =>
              ev.temperature(machineId, "storage", c, now - (temps.length - 1 - i) * minute)
            );
          await store(db, [
            // 12 minutes above: alerts.
            ...series("warm-12", [4, 6, 6.5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]),
            // 8 minutes above: not yet.
            ...series("warm-8", [4, 6, 6, 6, 6, 6, 6, 6, 6]),
            // 12 minutes, but a sample at 5 °C in the middle: two short breaches.
            ...series("warm-dip", [6, 6, 6, 6, 6, 6, 5, 6, 6, 6, 6, 6, 6]),
          ]);
          const before = f.published.length;
          const r = await f.monitor.run("conditions");
          assert.equal(r.job, "conditions");
          if (r.job !== "conditions") return;
          assert.deepEqual(r.result.alerted, ["warm-12"]);
          assert.deepEqual(
            r.result.breaches.map((b) => [b.machineId, b.alerting]),
            [["warm-12", true], ["warm-8", false], ["warm-dip", false]],
          );
          const [alert] = await open("warm-12");
          assert.equal(alert!.type, "FOOD_SAFETY");
          assert.equal(alert!.severity, "CRITICAL");
          assert.match(alert!.message, /storage above 5 °C for 10 min/);
          assert.deepEqual(await open("warm-8"), []);
          assert.deepEqual(await open("warm-dip"), []);
          await waitFor(
            "published",
            () =>
              f.published.slice(before).find((a) => a.machineId === "warm-12") ? true : undefined,
          );

          // The same breach, swept again: no new alert, no count.
          await store(db, [ev.temperature("warm-12", "storage", 7.5, now + 1000)]);
          const again = await sweepConditions(db, { nowMs: now + 2000 });
          assert.deepEqual(again.alerted, []);
          assert.equal((await open("warm-12"))[0]!.count, 1);

          // Recovered, then a new breach of 11 minutes while the alert is still open:
          // counted on it, not a second alert.
          const later = now + 5 * minute;
          await store(db, [
            ev.temperature("warm-12", "storage", 4, later - 12 * minute + 30_000),
            ...Array.from(
              { length: 12 },
              (_, i) => ev.temperature("warm-12", "storage", 6, later - (11 - i) * minute),
            ),
          ]);
          const third = await sweepConditions(db, { nowMs: later });
          assert.deepEqual(third.alerted, ["warm-12"]);
          const alerts = await open("warm-12");
          assert.equal(alerts.length, 1);
          assert.equal(alerts[0]!.count, 2);
        },
      );

      await t.step(
        "a machine quiet past the timeout goes offline with an alert; back, it clears",
        async () => {
          await addMachine(db, "quiet-1");
          await addMachine(db, "quiet-maint");
          const now = Date.now();
          await store(db, [
            ev.heartbeat("quiet-1", now, null),
            ev.heartbeat("quiet-maint", now, null),
          ]);
          await db.query(
            `UPDATE machines SET last_seen_at = now() - interval '11 minutes'
            WHERE machine_id IN ('quiet-1', 'quiet-maint')`,
          );
          await db.query("UPDATE machines SET maintenance = true WHERE machine_id = 'quiet-maint'");
          const conn = { nowMs: now, offlineAfterMs: 10 * minute };
          const listed = await listMachines(db, conn, { machineId: "quiet-1" });
          assert.equal(listed[0]!.online, false);
          assert.equal(listed[0]!.status, "OFFLINE");

          const before = f.published.length;
          const r = await sweepConnectivity(db, { nowMs: now, offlineAfterMs: 10 * minute });
          const quiet = r.wentOffline.filter((m) => m.startsWith("quiet-"));
          assert.deepEqual(quiet, ["quiet-1", "quiet-maint"]);
          const [alert] = await open("quiet-1");
          assert.equal(alert!.type, "OFFLINE");
          assert.match(alert!.message, /has not been heard from since/);
          // In maintenance: kept, muted, not among those to publish.
          const [muted] = await open("quiet-maint");
          assert.equal(muted!.muted, true);
          assert.deepEqual(
            r.alerts.filter((a) => a.machineId.startsWith("quiet-")).map((a) => a.machineId),
            ["quiet-1"],
          );
          assert.equal(f.published.length, before, "sweeps called directly publish nothing");

          // Still quiet: no second alert.
          const again = await sweepConnectivity(db, {
            nowMs: now + minute,
            offlineAfterMs: 10 * minute,
          });
          assert.ok(!again.wentOffline.includes("quiet-1"));
          assert.equal((await open("quiet-1"))[0]!.count, 1);

          // Heard from again (an ingested heartbeat): back online, alert resolved.
          await store(db, [ev.heartbeat("quiet-1", Date.now(), null)]);
          const back = await sweepConnectivity(db, {
            nowMs: Date.now(),
            offlineAfterMs: 10 * minute,
          });
          assert.ok(back.cameBack.includes("quiet-1"));
          assert.deepEqual(await open("quiet-1"), []);
          const resolved = back.alerts.find((a) => a.machineId === "quiet-1")!;
          assert.equal(resolved.resolved, true);
          const listedBack = await listMachines(db, {
            nowMs: Date.now(),
            offlineAfterMs: 10 * minute,
          }, {
            machineId: "quiet-1",
          });
          assert.equal(listedBack[0]!.online, true);
        },
      );

      await t.step("anomalies of seeded history: oven, cooking, payments (§6.6)", async () => {
        const now = Date.now();
        const events: unknown[] = [];
        for (let i = 0; i < 20; i++) {
          const at = now - (i + 1) * 10 * minute;
          // Bad oven: ±25 °C around its target while holding; good oven: ±2 °C.
          events.push(ev.temperature("sick-1", "oven", 220 + (i % 2 ? 25 : -25), at, {
            targetC: 220,
            state: "holding",
          }));
          events.push(ev.temperature("well-1", "oven", 220 + (i % 2 ? 2 : -2), at, {
            targetC: 220,
            state: "holding",
          }));
          // Preheating ramps are no instability.
          events.push(ev.temperature("well-1", "oven", 20 + i * 10, at + 1, {
            targetC: 220,
            state: "preheating",
          }));
        }
        for (let i = 0; i < 4; i++) {
          events.push(ev.cooking("sick-1", now - (i + 1) * 30 * minute, 7 * minute));
          events.push(ev.cooking("well-1", now - (i + 1) * 30 * minute, 4 * minute));
        }
        for (let i = 0; i < 12; i++) {
          events.push(ev.payment("sick-1", i < 3 ? "FAILED" : "COMPLETED", now - (i + 1) * minute));
          events.push(ev.payment("well-1", i < 1 ? "FAILED" : "COMPLETED", now - (i + 1) * minute));
        }
        // Two failures of two: too few payments to call it a pattern.
        events.push(ev.payment("few-1", "FAILED", now - minute));
        events.push(ev.payment("few-1", "FAILED", now - 2 * minute));
        await store(db, events);
        const found = await detectAnomalies(db, { nowMs: now });
        const mine = found.filter((a) => ["sick-1", "well-1", "few-1"].includes(a.machineId));
        assert.deepEqual(
          mine.map((a) => [a.machineId, a.type, a.alertType, a.severity]),
          [
            ["sick-1", "OVEN_INSTABILITY", "TEMPERATURE_ISSUE", "WARNING"],
            ["sick-1", "SLOW_COOKING", "EQUIPMENT_FAILURE", "WARNING"],
            ["sick-1", "PAYMENT_ISSUES", "PAYMENT_ISSUE", "CRITICAL"],
          ],
        );
        assert.match(mine[2]!.message, /25\.0% \(3 of 12 payments\)/);

        const r = await f.monitor.run("anomalies");
        if (r.job !== "anomalies") throw new Error("wrong job");
        const types = (await open("sick-1")).map((a) => a.type).sort();
        assert.deepEqual(types, ["EQUIPMENT_FAILURE", "PAYMENT_ISSUE", "TEMPERATURE_ISSUE"]);
        assert.deepEqual(await open("well-1"), []);
        // Run again: the same three alerts, counted, not duplicated.
        await f.monitor.run("anomalies");
        const counts = (await open("sick-1")).map((a) => a.count);
        assert.deepEqual(counts, [2, 2, 2]);
        await waitFor(
          "anomaly alerts published",
          () => f.published.filter((a) => a.machineId === "sick-1").length === 3 ? true : undefined,
        );
      });

      await t.step("restock forecast of 30 days of sales (§6.2)", async () => {
        const now = Date.now();
        await addMachine(db, "shop-1");
        await addMachine(db, "young-1");
        const events: unknown[] = [];
        for (let d = 0; d < 30; d++) {
          const at = now - d * day - 3 * 3600_000;
          events.push(
            ev.sale("shop-1", "101", 150, at),
            ev.sale("shop-1", "101", 150, at + 60_000),
          );
          events.push(ev.sale("shop-1", "102", 100, at));
          events.push(ev.sale("shop-1", "103", 100, at));
        }
        // A machine with 10 days of history sells 1 a day: not 1/3 a day.
        for (let d = 0; d < 10; d++) {
          events.push(ev.sale("young-1", "101", 150, now - d * day - 60_000));
        }
        // Sales older than 30 days are no history.
        events.push(ev.sale("shop-1", "104", 100, now - 40 * day));
        events.push(ev.inventory("shop-1", now, { "101": 3, "102": 5, "103": 20, "104": 0 }));
        events.push(ev.inventory("young-1", now, { "101": 2 }));
        await store(db, events);
        const recs = await predictRestock(db, { nowMs: now });
        const mine = recs.filter((r) => ["shop-1", "young-1"].includes(r.machineId));
        assert.deepEqual(
          mine.map((
            r,
          ) => [
            r.machineId,
            r.pizzaId,
            r.currentQty,
            r.daysUntilEmpty,
            r.recommendedQty,
            r.urgency,
          ]),
          [
            ["shop-1", "101", 3, 1.5, 28, "HIGH"],
            ["young-1", "101", 2, 2, 14, "HIGH"],
            ["shop-1", "102", 5, 5, 14, "MEDIUM"],
          ],
        );
        const one = await predictRestock(db, { nowMs: now, machineId: "young-1" });
        assert.deepEqual(one.map((r) => r.machineId), ["young-1"]);

        const r = await f.monitor.run("restock");
        if (r.job !== "restock") throw new Error("wrong job");
        const [low] = await open("shop-1");
        assert.equal(low!.type, "LOW_INVENTORY");
        assert.match(low!.message, /101 \(3 left, ~1\.5 days, restock 28\)/);
        const runs = await db.query<{ job: string; trigger: string }>(
          "SELECT job, trigger FROM monitor_runs WHERE job = 'restock'",
        );
        assert.deepEqual(runs, [{ job: "restock", trigger: "demand" }]);
      });
    } finally {
      await f.close();
    }
  });
}

Deno.test("the monitor runs its jobs on the schedule of its clock", async () => {
  const f = await cloudFixture();
  // 1000× speed: the 30 s sweep comes every ~30 ms of wall time.
  const clock = createRealClock({ speed: 1000 });
  const monitor = startMonitor({
    db: f.db,
    nc: f.nc,
    names: f.names,
    clock,
    log: silentLogger,
    offlineAfterMs: 10 * minute,
  });
  try {
    await addMachine(f.db, "sched-1");
    await store(f.db, [ev.heartbeat("sched-1", Date.now(), null)]);
    await f.db.query(
      "UPDATE machines SET last_seen_at = now() - interval '1 day' WHERE machine_id = 'sched-1'",
    );
    await waitFor(
      "an OFFLINE alert published by a scheduled sweep",
      () =>
        f.published.find((a) => a.machineId === "sched-1" && a.type === "OFFLINE")
          ? true
          : undefined,
    );
    await waitFor(
      "a scheduled anomaly run (hourly = 3.6 s here)",
      async () =>
        (await f.count("SELECT count(*)::int AS n FROM monitor_runs WHERE job = 'anomalies'")) > 0
          ? true
          : undefined,
      15_000,
    );
    const runs = await f.db.query<{ trigger: string }>(
      "SELECT DISTINCT trigger FROM monitor_runs",
    );
    assert.deepEqual(runs.map((r) => r.trigger), ["schedule"]);
  } finally {
    await monitor.stop();
    await f.close();
  }
});

Deno.test("msUntilHourUtc: the next 03:00 UTC", () => {
  const t = Date.parse("2030-05-01T02:00:00Z");
  assert.equal(msUntilHourUtc(t, 3), 3600_000);
  assert.equal(msUntilHourUtc(Date.parse("2030-05-01T03:00:00Z"), 3), day);
  assert.equal(msUntilHourUtc(Date.parse("2030-05-01T04:00:00Z"), 3), 23 * 3600_000);
});
