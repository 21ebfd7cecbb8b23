import assert from "node:assert/strict";
import { silentLogger } from "../../log/log.ts";
import { waitFor } from "../../testing/nats.ts";
import { addMachine } from "../db/machines.ts";
import { backends } from "../db/test_databases.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "../ingest/mod.ts";
import { cloudFixture, ev, store } from "./test_fixture.ts";

const minute = 60_000;
const day = 24 * 60 * minute;

/** Seed 000's example payload, verbatim. */
const seedPayload = {
  "last_sync_ts": "2025-10-12T10:00:00Z",
  "config_version": "v1.2",
  "transactions": [
    { "ts": "2025-10-12T10:01:30Z", "item_id": "101", "price_paid": 1.50 },
    { "ts": "2025-10-12T10:03:15Z", "item_id": "102", "price_paid": 1.00 },
  ],
  "inventory_levels": { "101": 3, "102": 8 },
};

const configBody = (expectedSeq: number, version: string, priceCents = 175) => ({
  expectedSeq,
  version,
  items: [
    { itemId: "101", name: "Cola", priceCents, quantity: 5 },
    { itemId: "205", name: "Water", priceCents: 125, quantity: 15 },
  ],
});

for (const backend of backends) {
  Deno.test(`admin API on ${backend}: routes, roles, config shadow, analytics`, async (t) => {
    const f = await cloudFixture({ backend });
    await ensureIngestConsumer(f.nc, f.names);
    const worker = startIngestWorker({ db: f.db, nc: f.nc, names: f.names, log: silentLogger });
    const { call, tokens } = f;
    const now = Date.now();
    try {
      // Two controllers and one /sync machine.
      const keyA = await addMachine(f.db, "m-a", { name: "Lobby", locationAddress: "Main St 1" });
      await addMachine(f.db, "m-b", { name: "Pier", locationAddress: "Harbor Rd 9" });
      const keyV = await addMachine(f.db, "vm-1", { locationAddress: "Main St 40" });
      const activeOrderId = crypto.randomUUID();
      await store(f.db, [
        ev.heartbeat("m-a", now - 5_000, "cfg-0"),
        ev.status("m-a", now - 2 * day, "OPERATIONAL"),
        ev.temperature("m-a", "storage", 3.5, now - minute),
        ev.temperature("m-a", "oven", 221, now - minute, { targetC: 220, state: "holding" }),
        ev.inventory("m-a", now - minute, { margherita: 1, pepperoni: 6 }),
        ev.order("m-a", {
          orderId: activeOrderId,
          pizzaId: "margherita",
          status: "PREPARING",
          cents: 999,
          placedAt: now - 2 * minute,
        }),
        ev.alert("m-a", "PICKUP_LOCKED", now - minute),
        ev.heartbeat("m-b", now - 5_000, null),
        ev.status("m-b", now - 5_000, "MAINTENANCE", true),
      ]);

      await t.step("/openapi.json documents the seed's paths with the token scheme", async () => {
        const res = await f.api.app.request("/openapi.json");
        assert.equal(res.status, 200);
        const doc = await res.json();
        for (
          const path of [
            "/api/v1/admin/machines",
            "/api/v1/admin/machine/{machineId}/status",
            "/api/v1/admin/machine/{machineId}/inventory",
            "/api/v1/admin/machine/{machineId}/maintenance-mode",
            "/api/v1/admin/analytics",
            "/api/v1/admin/machine/{machineId}/restock",
            "/api/v1/admin/low-inventory",
            "/api/v1/admin/alerts",
            "/api/v1/admin/alerts/{alertId}/resolve",
            "/api/v1/admin/machine/{machineId}/config",
            "/api/v1/machines/{machine_id}/sync",
          ]
        ) assert.ok(doc.paths[path], path);
        assert.ok(doc.components.securitySchemes.adminToken);
      });

      await t.step(
        "401 without or with a wrong token, 403 under-privileged; nothing changes",
        async () => {
          const routes: Array<[string, string, "viewer" | "technician" | "admin", unknown?]> = [
            ["GET", "/api/v1/admin/machines", "viewer"],
            ["GET", "/api/v1/admin/machine/m-a/status", "viewer"],
            ["GET", "/api/v1/admin/machine/m-a/inventory", "viewer"],
            ["GET", "/api/v1/admin/machine/m-a/config", "viewer"],
            ["GET", "/api/v1/admin/machine/m-a/maintenance-logs", "viewer"],
            ["GET", "/api/v1/admin/low-inventory", "viewer"],
            ["GET", "/api/v1/admin/analytics?startDate=2025-10-12&endDate=2025-10-12", "viewer"],
            ["GET", "/api/v1/admin/alerts", "viewer"],
            ["GET", "/api/v1/admin/monitor/runs", "viewer"],
            ["GET", "/api/v1/admin/restock-recommendations", "viewer"],
            ["POST", "/api/v1/admin/machine/m-a/maintenance-mode", "technician", {
              enable: true,
              reason: "x",
            }],
            ["POST", "/api/v1/admin/machine/m-a/restock", "technician", {
              items: [{
                pizzaId: "margherita",
                quantity: 1,
                storageSlot: 0,
                expirationDate: "2031-01-01",
              }],
            }],
            ["POST", "/api/v1/admin/alerts/whatever/resolve", "technician"],
            ["POST", "/api/v1/admin/monitor/anomalies/run", "technician"],
            ["PUT", "/api/v1/admin/machine/m-a/config", "admin", configBody(0, "v9")],
            ["POST", "/api/v1/admin/machines", "admin", { machineId: "m-new" }],
            ["POST", "/api/v1/admin/tokens", "admin", { role: "admin" }],
            ["GET", "/api/v1/admin/tokens", "admin"],
            ["DELETE", "/api/v1/admin/tokens/tok_x", "admin"],
            ["GET", "/api/v1/admin/audit", "admin"],
          ];
          const snapshot = () =>
            f.db.query(`SELECT
          (SELECT count(*)::int FROM machines) AS machines,
          (SELECT count(*)::int FROM machine_configs) AS configs,
          (SELECT count(*)::int FROM maintenance_logs) AS logs,
          (SELECT count(*)::int FROM api_tokens) AS tokens,
          (SELECT count(*)::int FROM alerts WHERE resolved) AS resolved,
          (SELECT count(*)::int FROM audit_log) AS audit,
          (SELECT count(*)::int FROM monitor_runs) AS runs,
          (SELECT bool_or(maintenance) FROM machines WHERE machine_id = 'm-a') AS maint`);
          const before = await snapshot();
          const weaker = { viewer: [], technician: ["viewer"], admin: ["viewer", "technician"] };
          for (const [method, path, role, body] of routes) {
            const none = await call(method, path, { token: null, body });
            assert.equal(none.status, 401, `${method} ${path} without a token`);
            assert.equal((none.json.error as { code: string }).code, "UNAUTHORIZED");
            const wrong = await call(method, path, { token: "fat_guess", body });
            assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
            for (const weak of weaker[role] as ("viewer" | "technician")[]) {
              const r = await call(method, path, { token: tokens[weak], body });
              assert.equal(r.status, 403, `${method} ${path} as ${weak}`);
              assert.match((r.json.error as { message: string }).message, new RegExp(role));
            }
          }
          assert.deepEqual(await snapshot(), before);
          // Authentication comes first: a stranger's bad body is a 401, not a 400.
          const bad = await call("PUT", "/api/v1/admin/machine/m-a/config", {
            token: null,
            body: { nonsense: 1 },
          });
          assert.equal(bad.status, 401);
        },
      );

      await t.step(
        "GET machines: location, status, temperatures, stock, alerts, online",
        async () => {
          const r = await call("GET", "/api/v1/admin/machines", { token: tokens.viewer });
          assert.equal(r.status, 200);
          const machines = r.json.machines as Array<Record<string, unknown>>;
          assert.deepEqual(machines.map((m) => m.machineId), ["m-a", "m-b", "vm-1"]);
          const a = machines[0]!;
          assert.equal(a.status, "OPERATIONAL");
          assert.equal(a.online, true);
          assert.ok(typeof a.lastSeen === "number" && Math.abs(a.lastSeen - now) < 60_000);
          assert.deepEqual(a.location, { address: "Main St 1", latitude: null, longitude: null });
          assert.deepEqual(a.temperature, { storage: 3.5, oven: 221, ambient: null });
          assert.deepEqual(a.inventoryLevels, { margherita: 1, pepperoni: 6 });
          assert.equal(a.alerts, 1);
          assert.equal(machines[1]!.status, "MAINTENANCE");
          // Registered and never heard from: offline.
          assert.equal(machines[2]!.status, "OFFLINE");
          assert.equal(machines[2]!.online, false);
          assert.equal(machines[2]!.lastSeen, null);

          const main = await call("GET", "/api/v1/admin/machines?location=main%20st");
          assert.deepEqual(
            (main.json.machines as Array<{ machineId: string }>).map((m) => m.machineId),
            ["m-a", "vm-1"],
          );
          const off = await call("GET", "/api/v1/admin/machines?status=OFFLINE");
          assert.deepEqual(
            (off.json.machines as Array<{ machineId: string }>).map((m) => m.machineId),
            ["vm-1"],
          );
          const bad = await call("GET", "/api/v1/admin/machines?status=SLEEPY");
          assert.equal(bad.status, 400);
          assert.match((bad.json.error as { message: string }).message, /^status:/);
          const badLimit = await call("GET", "/api/v1/admin/machines?limit=0");
          assert.equal(badLimit.status, 400);
          assert.match((badLimit.json.error as { message: string }).message, /^limit:/);
        },
      );

      await t.step(
        "GET machine status: detail, active orders, recent alerts, uptime; 404",
        async () => {
          const r = await call("GET", "/api/v1/admin/machine/m-a/status", { token: tokens.viewer });
          assert.equal(r.status, 200);
          assert.equal(r.json.machineId, "m-a");
          assert.deepEqual(
            (r.json.activeOrders as Array<{ orderId: string }>).map((o) => o.orderId),
            [activeOrderId],
          );
          assert.deepEqual(
            (r.json.recentAlerts as Array<{ type: string }>).map((a) => a.type),
            ["PICKUP_LOCKED"],
          );
          assert.equal(r.json.uptime, 100);
          assert.equal((r.json.temperatures as unknown[]).length, 2);
          assert.equal((r.json.inventory as unknown[]).length, 2);
          const unknown = await call("GET", "/api/v1/admin/machine/nope/status");
          assert.equal(unknown.status, 404);
          assert.match((unknown.json.error as { message: string }).message, /"nope"/);
        },
      );

      await t.step("GET inventory and low-inventory: the seed's fields; 404", async () => {
        const r = await call("GET", "/api/v1/admin/machine/m-a/inventory", {
          token: tokens.viewer,
        });
        assert.equal(r.status, 200);
        const items = r.json.items as Array<Record<string, unknown>>;
        assert.deepEqual(Object.keys(items[0]!).sort(), [
          "expirationDate",
          "pizzaId",
          "pizzaName",
          "quantity",
          "storageSlot",
        ]);
        assert.deepEqual(r.json.lowStockItems, [
          { pizzaId: "margherita", pizzaName: null, currentQuantity: 1, minimumQuantity: 2 },
        ]);
        assert.equal((await call("GET", "/api/v1/admin/machine/nope/inventory")).status, 404);
        const low = await call("GET", "/api/v1/admin/low-inventory", { token: tokens.viewer });
        assert.equal(low.status, 200);
        const machines = low.json.machines as Array<Record<string, unknown>>;
        assert.deepEqual(machines.map((m) => m.machineId), ["m-a"]);
        assert.equal((machines[0]!.location as { address: string }).address, "Main St 1");
      });

      await t.step(
        "config: conditional write, 409 on a stale seq or a reused version",
        async () => {
          const empty = await call("GET", "/api/v1/admin/machine/vm-1/config", {
            token: tokens.viewer,
          });
          assert.equal(empty.status, 200);
          assert.equal(empty.json.desired, null);
          assert.equal(empty.json.inSync, true);

          const first = await call("PUT", "/api/v1/admin/machine/vm-1/config", {
            body: configBody(0, "v1.3"),
          });
          assert.equal(first.status, 200);
          const desired = first.json.desired as { seq: number; version: string; createdBy: string };
          assert.equal(desired.seq, 1);
          assert.equal(desired.version, "v1.3");
          assert.equal(desired.createdBy, "ada");

          // Another admin worked from the view before v1.3: refused, v1.3 stays.
          const stale = await call("PUT", "/api/v1/admin/machine/vm-1/config", {
            body: configBody(0, "v1.4", 999),
          });
          assert.equal(stale.status, 409);
          assert.match(
            (stale.json.error as { message: string }).message,
            /seq 1, not the expected 0/,
          );
          const reused = await call("PUT", "/api/v1/admin/machine/vm-1/config", {
            body: configBody(1, "v1.3"),
          });
          assert.equal(reused.status, 409);
          const still = await call("GET", "/api/v1/admin/machine/vm-1/config");
          assert.equal((still.json.desired as { version: string }).version, "v1.3");

          const cases: Array<[unknown, RegExp]> = [
            [{ ...configBody(1, "v2"), expectedSeq: -1 }, /expectedSeq/],
            [{
              ...configBody(1, "v2"),
              items: [{ itemId: "1", name: "A", priceCents: 1.5, quantity: 1 }],
            }, /items\.0\.priceCents/],
            [{
              ...configBody(1, "v2"),
              items: [...configBody(1, "v2").items, configBody(1, "v2").items[0]],
            }, /items: must not name an itemId twice/],
            [{ version: "v2", items: [] }, /expectedSeq/],
          ];
          for (const [body, message] of cases) {
            const r = await call("PUT", "/api/v1/admin/machine/vm-1/config", { body });
            assert.equal(r.status, 400, String(message));
            assert.match((r.json.error as { message: string }).message, message);
          }
          const unknown = await call("PUT", "/api/v1/admin/machine/nope/config", {
            body: configBody(0, "v1"),
          });
          assert.equal(unknown.status, 404);
        },
      );

      await t.step(
        "/sync gets new_config while stale; desired vs reported per machine",
        async () => {
          const sync = await f.api.app.request("/api/v1/machines/vm-1/sync", {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${keyV}` },
            body: JSON.stringify(seedPayload),
          });
          assert.equal(sync.status, 200);
          const body = await sync.json();
          assert.equal(body.new_config.version, "v1.3");
          assert.deepEqual(body.new_config.items[0], {
            item_id: "101",
            name: "Cola",
            price: 1.75,
            quantity: 5,
          });
          // Machine A's key does not speak for vm-1.
          const other = await f.api.app.request("/api/v1/machines/vm-1/sync", {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${keyA}` },
            body: JSON.stringify(seedPayload),
          });
          assert.equal(other.status, 403);
          const shadow = await waitFor("reported v1.2", async () => {
            const r = await call("GET", "/api/v1/admin/machine/vm-1/config");
            return (r.json.reported as { version: string } | null)?.version === "v1.2"
              ? r.json
              : undefined;
          });
          assert.equal(shadow.inSync, false);
          const list = await call("GET", "/api/v1/admin/machines?location=Main%20St%2040");
          const vm = (list.json.machines as Array<Record<string, unknown>>)[0]!;
          assert.deepEqual(vm.config, {
            desiredVersion: "v1.3",
            reportedVersion: "v1.2",
            inSync: false,
          });
          assert.equal(vm.online, true);
        },
      );

      await t.step("analytics: /sync sales count as orders; controller orders too", async () => {
        await waitFor(
          "sales stored",
          async () =>
            (await f.count("SELECT count(*)::int AS n FROM sales WHERE machine_id = 'vm-1'")) === 2
              ? true
              : undefined,
        );
        const day0 = Date.parse("2025-10-12T09:00:00Z");
        await store(f.db, [
          ev.order("m-a", {
            pizzaId: "margherita",
            status: "DISPENSED",
            cents: 999,
            placedAt: day0,
            dispensedAt: day0 + 5 * minute,
          }),
          ev.order("m-a", {
            pizzaId: "margherita",
            status: "DISPENSED",
            cents: 999,
            placedAt: day0 + 10 * minute,
            dispensedAt: day0 + 17 * minute,
          }),
          // Refunded orders are no sales.
          ev.order("m-a", {
            pizzaId: "pepperoni",
            status: "REFUNDED",
            cents: 1099,
            placedAt: day0,
          }),
        ]);
        const r = await call(
          "GET",
          "/api/v1/admin/analytics?startDate=2025-10-12&endDate=2025-10-12",
          {
            token: tokens.viewer,
          },
        );
        assert.equal(r.status, 200);
        assert.equal(r.json.totalOrders, 4);
        assert.deepEqual(r.json.ordersBySource, { controller: 2, sync: 2 });
        assert.equal(r.json.revenueCents, 999 * 2 + 150 + 100);
        assert.equal(r.json.averageOrderTimeMs, 6 * minute);
        const popular = r.json.popularPizzas as Array<{ pizzaId: string; orders: number }>;
        assert.deepEqual(popular[0], {
          pizzaId: "margherita",
          pizzaName: null,
          orders: 2,
          revenueCents: 1998,
        });
        assert.equal(popular.length, 3);
        assert.ok("m-a" in (r.json.machineUptime as object));

        const one = await call(
          "GET",
          "/api/v1/admin/analytics?startDate=2025-10-12T00:00:00Z&endDate=2025-10-13T00:00:00Z&machineId=vm-1",
        );
        assert.equal(one.json.totalOrders, 2);
        assert.equal(one.json.revenueCents, 250);
        // Cola is named by vm-1's desired config.
        assert.equal(
          (one.json.popularPizzas as Array<{ pizzaName: string | null }>)[0]!.pizzaName,
          "Cola",
        );
        const none = await call(
          "GET",
          "/api/v1/admin/analytics?startDate=2025-10-13&endDate=2025-10-13",
        );
        assert.equal(none.json.totalOrders, 0);
        assert.equal(none.json.averageOrderTimeMs, null);

        const cases: Array<[string, number, RegExp]> = [
          ["startDate=2025-10-13&endDate=2025-10-12", 400, /endDate/],
          ["startDate=yesterday&endDate=2025-10-12", 400, /startDate/],
          ["endDate=2025-10-12", 400, /startDate/],
          ["startDate=2020-01-01&endDate=2025-10-12", 400, /endDate: range/],
          ["startDate=2025-10-12&endDate=2025-10-12&machineId=nope", 404, /"nope"/],
        ];
        for (const [query, status, message] of cases) {
          const x = await call("GET", `/api/v1/admin/analytics?${query}`);
          assert.equal(x.status, status, query);
          assert.match((x.json.error as { message: string }).message, message);
        }
      });

      await t.step("alerts: list open, resolve once (published), 404 and 409", async () => {
        const open = await call("GET", "/api/v1/admin/alerts?machineId=m-a", {
          token: tokens.viewer,
        });
        assert.equal(open.status, 200);
        const alerts = open.json.alerts as Array<{ alertId: string; type: string; count: number }>;
        assert.deepEqual(alerts.map((a) => a.type), ["PICKUP_LOCKED"]);
        const id = alerts[0]!.alertId;
        const r = await call("POST", `/api/v1/admin/alerts/${id}/resolve`, {
          token: tokens.technician,
          body: { note: "cleared the bay" },
        });
        assert.equal(r.status, 200);
        assert.equal(r.json.resolved, true);
        assert.equal(r.json.resolvedBy, "tom");
        await waitFor(
          "resolution published",
          () => f.published.find((a) => a.alertId === id && a.resolved) ? true : undefined,
        );
        const again = await call("POST", `/api/v1/admin/alerts/${id}/resolve`, {
          token: tokens.technician,
        });
        assert.equal(again.status, 409);
        assert.match(
          (again.json.error as { message: string }).message,
          /resolved already by "tom"/,
        );
        const unknown = await call("POST", "/api/v1/admin/alerts/nope/resolve", {
          token: tokens.technician,
        });
        assert.equal(unknown.status, 404);
        const badBody = await call("POST", `/api/v1/admin/alerts/${id}/resolve`, {
          token: tokens.technician,
          body: { note: 5 },
        });
        assert.equal(badBody.status, 400);
        assert.match((badBody.json.error as { message: string }).message, /^note:/);
        const none = await call("GET", "/api/v1/admin/alerts?machineId=m-a");
        assert.deepEqual(none.json.alerts, []);
        const all = await call("GET", "/api/v1/admin/alerts?machineId=m-a&status=all");
        assert.equal((all.json.alerts as unknown[]).length, 1);
        const bad = await call("GET", "/api/v1/admin/alerts?severity=LOUD");
        assert.equal(bad.status, 400);
        assert.match((bad.json.error as { message: string }).message, /^severity:/);
      });

      await t.step("machines and tokens by API: 201 once, 409 again; revoked is 401", async () => {
        const made = await call("POST", "/api/v1/admin/machines", {
          body: { machineId: "vm-2", location: { address: "Dock 3" } },
        });
        assert.equal(made.status, 201);
        const key = made.json.apiKey as string;
        const sync = await f.api.app.request("/api/v1/machines/vm-2/sync", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify(seedPayload),
        });
        assert.equal(sync.status, 200);
        const again = await call("POST", "/api/v1/admin/machines", { body: { machineId: "vm-2" } });
        assert.equal(again.status, 409);
        const bad = await call("POST", "/api/v1/admin/machines", { body: { machineId: "a b" } });
        assert.equal(bad.status, 400);
        assert.match((bad.json.error as { message: string }).message, /^machineId:/);

        const token = await call("POST", "/api/v1/admin/tokens", {
          body: { role: "viewer", name: "dash" },
        });
        assert.equal(token.status, 201);
        const viewer = token.json.token as string;
        assert.equal((await call("GET", "/api/v1/admin/machines", { token: viewer })).status, 200);
        const badRole = await call("POST", "/api/v1/admin/tokens", { body: { role: "root" } });
        assert.equal(badRole.status, 400);
        assert.match((badRole.json.error as { message: string }).message, /^role:/);
        const revoked = await call("DELETE", `/api/v1/admin/tokens/${token.json.tokenId}`);
        assert.equal(revoked.status, 200);
        assert.equal((await call("GET", "/api/v1/admin/machines", { token: viewer })).status, 401);
        assert.equal(
          (await call("DELETE", `/api/v1/admin/tokens/${token.json.tokenId}`)).status,
          404,
        );
        const list = await call("GET", "/api/v1/admin/tokens");
        assert.ok(
          !JSON.stringify(list.json).includes(viewer),
          "the token list never holds a token",
        );
      });

      await t.step("monitor on demand, restock forecast, audit log", async () => {
        const run = await call("POST", "/api/v1/admin/monitor/connectivity/run", {
          token: tokens.technician,
        });
        assert.equal(run.status, 200);
        assert.equal(run.json.job, "connectivity");
        const badJob = await call("POST", "/api/v1/admin/monitor/sleep/run");
        assert.equal(badJob.status, 400);
        const runs = await call("GET", "/api/v1/admin/monitor/runs?job=connectivity");
        assert.equal((runs.json.runs as Array<{ trigger: string }>)[0]!.trigger, "demand");
        const forecast = await call("GET", "/api/v1/admin/restock-recommendations?machineId=m-a");
        assert.equal(forecast.status, 200);
        assert.ok(Array.isArray(forecast.json.recommendations));
        assert.equal(
          (await call("GET", "/api/v1/admin/restock-recommendations?machineId=nope")).status,
          404,
        );
        const audit = await call("GET", "/api/v1/admin/audit");
        const actions =
          (audit.json.entries as Array<{ action: string; outcome: string; actor: string }>)
            .map((e) => `${e.action}:${e.outcome}:${e.actor}`);
        for (
          const expected of [
            "config.put:ok:ada",
            "config.put:CONFLICT:ada",
            "alert.resolve:ok:tom",
            "machine.add:ok:ada",
            "token.add:ok:ada",
            "monitor.connectivity:ok:tom",
          ]
        ) assert.ok(actions.includes(expected), expected);
      });
    } finally {
      await worker.stop();
      await deleteFleetStreams(f.nc, f.names);
      await f.close();
    }
  });
}
