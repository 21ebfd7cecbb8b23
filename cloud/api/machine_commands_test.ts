import assert from "node:assert/strict";
import { connectTestBus, waitFor } from "../../testing/nats.ts";
import { Component, ok } from "../../protocol/define.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import * as carousel from "../../protocol/carousel.ts";
import { addMachine } from "../db/machines.ts";
import { raiseCloudAlert } from "../admin/alerts.ts";
import { cloudFixture, ev, store } from "./test_fixture.ts";

type Json = Record<string, unknown>;

const components = Object.fromEntries(
  Component.options.map((c) => [c, { state: "running", alive: true, lastSeen: null, restarts: 0 }]),
) as Record<(typeof Component.options)[number], {
  state: string;
  alive: boolean;
  lastSeen: number | null;
  restarts: number;
}>;
const message = (json: Json) => (json.error as { message: string }).message;

Deno.test("maintenance mode and restock go to the machine over NATS", async (t) => {
  const f = await cloudFixture({ commandTimeoutMs: 1500 });
  // The machine: a responder on its own subjects of the real NATS.
  const machine = await connectTestBus();
  const id = machine.machineId;
  const seen: Array<{ enable: boolean; reason: string }> = [];
  let maintenance = false;
  const stops: Array<() => void> = [];
  try {
    await addMachine(f.db, id, { locationAddress: "Depot" });
    await addMachine(f.db, "silent-1");
    await store(f.db, [ev.heartbeat(id, Date.now(), "cfg-1")]);

    await t.step("a machine that confirms: 200, recorded, alerts muted from then on", async () => {
      stops.push(machine.bus.serve(supervisor.maintenance, (req) => {
        seen.push({ enable: req.enable, reason: req.reason });
        maintenance = req.enable;
        return ok({
          status: req.enable ? "MAINTENANCE" : "OPERATIONAL",
          reason: req.enable ? `maintenance: ${req.reason}` : null,
          cashOnly: false,
          maintenance,
          components,
          alerts: [],
        });
      }));
      await machine.raw.flush();
      const r = await f.call("POST", `/api/v1/admin/machine/${id}/maintenance-mode`, {
        token: f.tokens.technician,
        body: { enable: true, reason: "oven cleaning" },
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.json.success, true);
      assert.equal(r.json.status, "MAINTENANCE");
      assert.deepEqual(seen, [{ enable: true, reason: "oven cleaning" }]);
      const logs = await f.call("GET", `/api/v1/admin/machine/${id}/maintenance-logs`);
      const log = (logs.json.logs as Json[])[0]!;
      assert.equal(log.performedBy, "tom");
      assert.match(log.description as string, /oven cleaning/);
      const list = await f.call("GET", "/api/v1/admin/machines?status=MAINTENANCE");
      const m = (list.json.machines as Json[]).find((x) => x.machineId === id)!;
      assert.ok(m, "listed in maintenance");
      assert.ok(typeof m.lastMaintenance === "number");

      // Alerts of a machine in maintenance are kept, muted, and not published.
      const before = f.published.length;
      const opened = await raiseCloudAlert(f.db, {
        machineId: id,
        type: "EQUIPMENT_FAILURE",
        severity: "WARNING",
        message: "arm slow",
        atMs: Date.now(),
      });
      assert.equal(opened, null);
      await store(f.db, [ev.alert(id, "LOW_INVENTORY", Date.now())]);
      const alerts = await f.call("GET", `/api/v1/admin/alerts?machineId=${id}`);
      const muted = alerts.json.alerts as Array<{ type: string; muted: boolean }>;
      assert.deepEqual(muted.map((a) => [a.type, a.muted]).sort(), [
        ["EQUIPMENT_FAILURE", true],
        ["LOW_INVENTORY", true],
      ]);
      await f.nc.flush();
      assert.equal(f.published.length, before);
    });

    await t.step("leaving maintenance: alerts still open are unmuted and published", async () => {
      const r = await f.call("POST", `/api/v1/admin/machine/${id}/maintenance-mode`, {
        token: f.tokens.technician,
        body: { enable: false, reason: "done" },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.maintenance, false);
      await waitFor(
        "the two muted alerts published",
        () => f.published.filter((a) => a.machineId === id).length === 2 ? true : undefined,
      );
      const alerts = await f.call("GET", `/api/v1/admin/alerts?machineId=${id}`);
      assert.ok((alerts.json.alerts as Array<{ muted: boolean }>).every((a) => !a.muted));
      const opened = await raiseCloudAlert(f.db, {
        machineId: id,
        type: "PAYMENT_ISSUE",
        severity: "CRITICAL",
        message: "reader offline",
        atMs: Date.now(),
      });
      assert.ok(opened, "an unmuted alert that opened is returned for publishing");
      assert.equal(opened.type, "PAYMENT_ISSUE");
    });

    await t.step("a machine that does not answer in time: 504 with a clear error", async () => {
      // Someone listens on the subject but never replies: a hung supervisor.
      const sub = f.nc.subscribe(supervisor.maintenance.subject("silent-1"));
      await f.nc.flush();
      try {
        const r = await f.call("POST", "/api/v1/admin/machine/silent-1/maintenance-mode", {
          token: f.tokens.technician,
          body: { enable: true, reason: "check" },
        });
        assert.equal(r.status, 504);
        assert.equal((r.json.error as { code: string }).code, "TIMEOUT");
        assert.match(
          message(r.json),
          /Machine "silent-1" did not confirm maintenance mode on within 1500 ms/,
        );
      } finally {
        sub.unsubscribe();
      }
      const row = await f.db.query<{ maintenance: boolean }>(
        "SELECT maintenance FROM machines WHERE machine_id = 'silent-1'",
      );
      assert.equal(row[0]!.maintenance, false, "an unconfirmed change is not recorded as done");
      const audit = await f.call("GET", "/api/v1/admin/audit?machineId=silent-1");
      assert.equal((audit.json.entries as Json[])[0]!.outcome, "TIMEOUT");
    });

    await t.step(
      "a machine nobody answers for: 503; unknown machine 404; bad body 400",
      async () => {
        const r = await f.call("POST", "/api/v1/admin/machine/silent-1/maintenance-mode", {
          token: f.tokens.technician,
          body: { enable: true, reason: "check" },
        });
        assert.equal(r.status, 503);
        assert.match(message(r.json), /not reachable over NATS/);
        const unknown = await f.call("POST", "/api/v1/admin/machine/nope/maintenance-mode", {
          token: f.tokens.technician,
          body: { enable: true, reason: "check" },
        });
        assert.equal(unknown.status, 404);
        const cases: Array<[unknown, RegExp]> = [
          [{ enable: "yes", reason: "x" }, /^enable:/],
          [{ enable: true, reason: "" }, /^reason:/],
          [{ enable: true }, /^reason:/],
          ["{not json", /not valid JSON/],
        ];
        for (const [body, pattern] of cases) {
          const x = await f.call("POST", `/api/v1/admin/machine/${id}/maintenance-mode`, {
            token: f.tokens.technician,
            body,
          });
          assert.equal(x.status, 400, String(pattern));
          assert.match(message(x.json), pattern);
        }
      },
    );

    await t.step("restock: recorded as a maintenance log and sent to the carousel", async () => {
      const loaded: unknown[] = [];
      stops.push(machine.bus.serve(carousel.restock, (req) => {
        loaded.push(req.items);
        return ok({
          items: [],
          available: { margherita: 5 },
          reservations: [],
          storageTempC: 4,
          salesStopped: false,
          stopReason: null,
        });
      }));
      await machine.raw.flush();
      const r = await f.call("POST", `/api/v1/admin/machine/${id}/restock`, {
        token: f.tokens.technician,
        body: {
          items: [{
            pizzaId: "margherita",
            quantity: 5,
            storageSlot: 2,
            expirationDate: "2031-01-31",
          }],
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.available, { margherita: 5 });
      assert.deepEqual(loaded, [[{
        pizzaId: "margherita",
        quantity: 5,
        storageSlot: 2,
        expiresAt: Date.parse("2031-01-31"),
      }]]);
      const logs = await f.call("GET", `/api/v1/admin/machine/${id}/maintenance-logs`);
      const log = (logs.json.logs as Json[])[0]!;
      assert.equal(log.type, "RESTOCKING");
      assert.equal(log.logId, r.json.logId);
      assert.ok(log.completedAt !== null);
      assert.equal((log.details as { outcome: string }).outcome, "accepted");

      const refused = await f.call("POST", "/api/v1/admin/machine/silent-1/restock", {
        token: f.tokens.technician,
        body: {
          items: [{ pizzaId: "x", quantity: 1, storageSlot: 0, expirationDate: "2031-01-01" }],
        },
      });
      assert.equal(refused.status, 503);
      const open = await f.db.query<{ completed: boolean; outcome: string }>(
        `SELECT completed_at IS NOT NULL AS completed, details->>'outcome' AS outcome
           FROM maintenance_logs WHERE machine_id = 'silent-1' AND type = 'RESTOCKING'`,
      );
      assert.deepEqual(open, [{ completed: false, outcome: "UNAVAILABLE" }]);
      const cases: Array<[unknown, RegExp]> = [
        [{ items: [] }, /^items:/],
        [{
          items: [{ pizzaId: "m", quantity: 0, storageSlot: 0, expirationDate: "2031-01-01" }],
        }, /^items\.0\.quantity:/],
        [{
          items: [{ pizzaId: "m", quantity: 1, storageSlot: 0, expirationDate: "soon" }],
        }, /^items\.0\.expirationDate:/],
      ];
      for (const [body, pattern] of cases) {
        const x = await f.call("POST", `/api/v1/admin/machine/${id}/restock`, {
          token: f.tokens.technician,
          body,
        });
        assert.equal(x.status, 400, String(pattern));
        assert.match(message(x.json), pattern);
      }
      assert.equal(
        (await f.call("POST", "/api/v1/admin/machine/nope/restock", {
          token: f.tokens.technician,
          body: {
            items: [{ pizzaId: "m", quantity: 1, storageSlot: 0, expirationDate: "2031-01-01" }],
          },
        })).status,
        404,
      );
    });
  } finally {
    for (const s of stops) s();
    await machine.close();
    await f.close();
  }
});
