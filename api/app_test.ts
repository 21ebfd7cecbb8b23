import assert from "node:assert/strict";
import { ErrorCode, fail } from "../protocol/define.ts";
import * as order from "../protocol/order.ts";
import * as oven from "../protocol/oven.ts";
import * as safety from "../protocol/safety.ts";
import { waitFor } from "../testing/nats.ts";
import { LiveMessage, LiveTranslator } from "./live.ts";
import { httpStatusOf } from "./errors.ts";
import { tokensEqual } from "./auth.ts";
import {
  call,
  knownOrderId,
  knownPickupCode,
  margherita,
  sampleOrder,
  startTestMachine,
  testToken,
} from "./test_machine.ts";

const unknownOrderId = "9f0e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";

Deno.test("machine API: customer routes map onto order commands", async (t) => {
  const m = await startTestMachine();
  const api = m.machineApi;
  const base = `/api/v1/machine/${m.machineId}`;
  const last = () => m.received.at(-1);
  try {
    await t.step(
      "GET menu lists pizzas with availability and cooking time in seconds",
      async () => {
        const r = await call(api, "GET", `${base}/menu`);
        assert.equal(r.status, 200);
        const pizzas = r.json.pizzas as Record<string, unknown>[];
        assert.equal(pizzas.length, 1);
        assert.equal(pizzas[0]!.pizzaId, "margherita");
        assert.equal(pizzas[0]!.available, true);
        assert.equal(pizzas[0]!.priceCents, 899);
        assert.equal(pizzas[0]!.cookingTime, 90);
        assert.deepEqual(last(), { verb: "order.menu", payload: {} });
      },
    );

    await t.step("POST order creates it: 201 with estimatedTime in seconds", async () => {
      const r = await call(api, "POST", `${base}/order`, {
        body: { pizzaId: "margherita", customerEmail: "ann@example.com" },
      });
      assert.equal(r.status, 201);
      assert.deepEqual(r.json, {
        orderId: knownOrderId,
        totalAmountCents: 899,
        estimatedTime: 181,
        pickupCode: knownPickupCode,
      });
      assert.deepEqual(last(), {
        verb: "order.create",
        payload: { pizzaId: "margherita", customerEmail: "ann@example.com" },
      });
    });

    await t.step("POST payment by card token", async () => {
      const r = await call(api, "POST", `/api/v1/order/${knownOrderId}/payment`, {
        body: { method: "CARD", paymentDetails: { token: "tok_visa" } },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.paymentId, "pay-1");
      assert.equal(r.json.status, "AUTHORIZED");
      assert.equal(r.json.last4, "4242");
      assert.equal(r.json.insertedCents, undefined);
      assert.deepEqual(last(), {
        verb: "order.pay",
        payload: { orderId: knownOrderId, method: "CARD", paymentDetails: { token: "tok_visa" } },
      });
    });

    await t.step(
      "an Idempotency-Key header is passed on with the order and the payment",
      async () => {
        const created = await call(api, "POST", `${base}/order`, {
          body: { pizzaId: "margherita" },
          headers: { "Idempotency-Key": "kiosk-1:order-7" },
        });
        assert.equal(created.status, 201);
        assert.deepEqual(last(), {
          verb: "order.create",
          payload: { pizzaId: "margherita", idempotencyKey: "kiosk-1:order-7" },
        });
        const paid = await call(api, "POST", `/api/v1/order/${knownOrderId}/payment`, {
          body: { method: "CASH", paymentDetails: { denominationCents: 500 } },
          headers: { "idempotency-key": "kiosk-1:bill-1" },
        });
        assert.equal(paid.status, 200);
        assert.equal(last()?.payload.idempotencyKey, "kiosk-1:bill-1");
      },
    );

    await t.step(
      "a malformed Idempotency-Key is 400 naming the header, and sends nothing",
      async () => {
        const before = m.received.length;
        const r = await call(api, "POST", `${base}/order`, {
          body: { pizzaId: "margherita" },
          headers: { "Idempotency-Key": "x".repeat(129) },
        });
        assert.equal(r.status, 400);
        assert.equal((r.json.error as { code: string }).code, "BAD_REQUEST");
        assert.match((r.json.error as { message: string }).message, /^idempotency-key: /);
        assert.equal(m.received.length, before);
      },
    );

    await t.step("POST payment in cash reports inserted and change", async () => {
      const r = await call(api, "POST", `/api/v1/order/${knownOrderId}/payment`, {
        body: { method: "CASH", paymentDetails: { denominationCents: 1000 } },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.insertedCents, 1000);
      assert.equal(r.json.changeCents, 101);
      assert.deepEqual(last()?.payload.paymentDetails, { denominationCents: 1000 });
    });

    await t.step("GET status shows status, queue position and ready time", async () => {
      const r = await call(api, "GET", `/api/v1/order/${knownOrderId}/status`);
      assert.equal(r.status, 200);
      assert.equal(r.json.orderId, knownOrderId);
      assert.equal(r.json.status, "PAID");
      assert.equal(r.json.pickupCode, knownPickupCode);
      assert.equal(r.json.queuePosition, 2);
      assert.equal(typeof r.json.estimatedReadyTime, "number");
      assert.equal((r.json.payment as Record<string, unknown>).status, "AUTHORIZED");
      assert.deepEqual(last(), { verb: "order.get", payload: { orderId: knownOrderId } });
    });

    await t.step("POST pickup passes the code and the outcome", async () => {
      const good = await call(api, "POST", `/api/v1/order/${knownOrderId}/pickup`, {
        body: { pickupCode: knownPickupCode },
      });
      assert.equal(good.status, 200);
      assert.equal(good.json.success, true);
      assert.deepEqual(last(), {
        verb: "order.pickup",
        payload: { orderId: knownOrderId, pickupCode: knownPickupCode },
      });
      const bad = await call(api, "POST", `/api/v1/order/${knownOrderId}/pickup`, {
        body: { pickupCode: "0000" },
      });
      assert.equal(bad.status, 200);
      assert.equal(bad.json.success, false);
      assert.equal(bad.json.attemptsLeft, 4);
    });

    await t.step("POST cancel cancels as the customer, with or without a reason", async () => {
      const r = await call(api, "POST", `/api/v1/order/${knownOrderId}/cancel`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { success: true, refundInitiated: true, status: "REFUNDED" });
      assert.deepEqual(last(), {
        verb: "order.cancel",
        payload: { orderId: knownOrderId, reason: "Cancelled by the customer", by: "CUSTOMER" },
      });
      await call(api, "POST", `/api/v1/order/${knownOrderId}/cancel`, {
        body: { reason: "Changed my mind" },
      });
      assert.equal(last()?.payload.reason, "Changed my mind");
    });

    await t.step("bad bodies and params are 400 naming the field, and reach nobody", async () => {
      const before = m.received.length;
      const cases: [string, string, unknown, RegExp][] = [
        ["POST", `${base}/order`, { pizzaId: 7 }, /^pizzaId: /],
        ["POST", `${base}/order`, { pizzaId: "x", customerEmail: "nope" }, /^customerEmail: /],
        [
          "POST",
          `/api/v1/order/${knownOrderId}/payment`,
          { method: "CARD", paymentDetails: { token: "4111111111111111" } },
          /paymentDetails/,
        ],
        [
          "POST",
          `/api/v1/order/${knownOrderId}/payment`,
          { method: "BITCOIN", paymentDetails: { token: "tok_visa" } },
          /^method: /,
        ],
        ["POST", `/api/v1/order/${knownOrderId}/pickup`, {}, /^pickupCode: /],
        ["POST", `/api/v1/order/not-a-uuid/pickup`, { pickupCode: "1" }, /^orderId: /],
        ["GET", `/api/v1/order/not-a-uuid/status`, undefined, /^orderId: /],
      ];
      for (const [method, path, body, message] of cases) {
        const r = await call(api, method, path, body === undefined ? {} : { body });
        assert.equal(r.status, 400, `${method} ${path}`);
        const error = r.json.error as { code: string; message: string };
        assert.equal(error.code, "BAD_REQUEST");
        assert.match(error.message, message);
      }
      const broken = await call(api, "POST", `${base}/order`, { rawBody: "{oops" });
      assert.equal(broken.status, 400);
      assert.deepEqual(broken.json, {
        error: { code: "BAD_REQUEST", message: "(body): not valid JSON" },
      });
      assert.equal(m.received.length, before);
    });

    await t.step("another machine's id is 404; an unknown order is 404", async () => {
      const before = m.received.length;
      const other = await call(api, "POST", `/api/v1/machine/someone-else/order`, {
        body: { pizzaId: "margherita" },
      });
      assert.equal(other.status, 404);
      assert.equal((other.json.error as { code: string }).code, "NOT_FOUND");
      assert.equal(m.received.length, before);
      const unknown = await call(api, "GET", `/api/v1/order/${unknownOrderId}/status`);
      assert.equal(unknown.status, 404);
      assert.deepEqual(unknown.json, {
        error: { code: "NOT_FOUND", message: `Order "${unknownOrderId}" is unknown` },
      });
    });

    await t.step("a refusal passes through with its status and message", async () => {
      m.script.set("order.create", fail("CONFLICT", 'Pizza "margherita" is sold out'));
      const r = await call(api, "POST", `${base}/order`, { body: { pizzaId: "margherita" } });
      m.script.clear();
      assert.equal(r.status, 409);
      assert.deepEqual(r.json, {
        error: { code: "CONFLICT", message: 'Pizza "margherita" is sold out' },
      });
    });

    await t.step("every error code maps to its status with the same body", async () => {
      for (const code of ErrorCode.options) {
        m.script.set("order.get", fail(code, `because ${code}`));
        const r = await call(api, "GET", `/api/v1/order/${knownOrderId}/status`);
        assert.equal(r.status, httpStatusOf(code), code);
        assert.deepEqual(r.json, { error: { code, message: `because ${code}` } });
      }
      m.script.clear();
      assert.deepEqual(ErrorCode.options.map(httpStatusOf), [400, 404, 409, 503, 504, 409, 500]);
    });
  } finally {
    await m.close();
  }
});

Deno.test("machine API: control routes want the token and map onto their commands", async (t) => {
  const m = await startTestMachine();
  const api = m.machineApi;
  const base = `/api/v1/machine/${m.machineId}`;
  const token = testToken;
  const last = () => m.received.at(-1);
  try {
    await t.step(
      "401 without a token, 403 with a wrong one, and nothing reaches the bus",
      async () => {
        const before = m.received.length;
        const routes: [string, string][] = [
          ["POST", "cook"],
          ["GET", "cooking-status"],
          ["POST", "dispense"],
          ["POST", "cancel-order"],
          ["POST", "safety/reset"],
          ["POST", "maintenance-mode"],
          ["POST", "restock"],
          ["POST", "service"],
          ["GET", "status"],
          ["GET", "inventory"],
        ];
        for (const [method, path] of routes) {
          const body = method === "POST" ? { body: {} } : {};
          const none = await call(api, method, `${base}/${path}`, body);
          assert.equal(none.status, 401, path);
          assert.equal((none.json.error as { code: string }).code, "UNAUTHORIZED");
          const wrong = await call(api, method, `${base}/${path}`, { ...body, token: "guess" });
          assert.equal(wrong.status, 403, path);
          assert.equal((wrong.json.error as { code: string }).code, "FORBIDDEN");
        }
        assert.equal(m.received.length, before);
        assert.equal(await tokensEqual("abc", "abc"), true);
        assert.equal(await tokensEqual("abc", "abd"), false);
        assert.equal(await tokensEqual("", "abc"), false);
      },
    );

    await t.step("POST cook bakes at the menu's temperature and time", async () => {
      const r = await call(api, "POST", `${base}/cook`, {
        token,
        body: { orderId: knownOrderId, pizzaId: "margherita", storageSlot: 2 },
      });
      assert.equal(r.status, 200);
      assert.equal(r.json.sessionId, "session-1");
      assert.equal(typeof r.json.estimatedCompletion, "number");
      assert.deepEqual(last(), {
        verb: "oven.cook",
        payload: {
          orderId: knownOrderId,
          pizzaId: "margherita",
          targetC: margherita.cookingTempC,
          cookTimeMs: margherita.cookingTimeMs,
        },
      });
      const unknown = await call(api, "POST", `${base}/cook`, {
        token,
        body: { orderId: knownOrderId, pizzaId: "calzone", storageSlot: 2 },
      });
      assert.equal(unknown.status, 404);
      assert.match((unknown.json.error as { message: string }).message, /calzone/);
    });

    await t.step("GET cooking-status reports the session in seconds", async () => {
      const r = await call(api, "GET", `${base}/cooking-status`, { token });
      assert.equal(r.status, 200);
      assert.equal(r.json.sessionId, "session-1");
      assert.equal(r.json.currentTemperature, 248.5);
      assert.equal(r.json.targetTemperature, 250);
      assert.equal(r.json.timeRemaining, 46);
      assert.equal(r.json.status, "COOKING");
      assert.equal(last()?.verb, "oven.status");
    });

    await t.step("POST dispense and cancel-order", async () => {
      const d = await call(api, "POST", `${base}/dispense`, {
        token,
        body: { orderId: knownOrderId },
      });
      assert.equal(d.status, 200);
      assert.deepEqual(d.json, { success: true, message: "Pizza handed out" });
      assert.deepEqual(last(), { verb: "order.dispense", payload: { orderId: knownOrderId } });
      const c = await call(api, "POST", `${base}/cancel-order`, {
        token,
        body: { orderId: knownOrderId, reason: "Oven fault" },
      });
      assert.equal(c.status, 200);
      assert.equal(c.json.refundInitiated, true);
      assert.deepEqual(last(), {
        verb: "order.cancel",
        payload: { orderId: knownOrderId, reason: "Oven fault", by: "TECHNICIAN" },
      });
      const missing = await call(api, "POST", `${base}/cancel-order`, {
        token,
        body: { orderId: knownOrderId },
      });
      assert.equal(missing.status, 400);
      assert.match((missing.json.error as { message: string }).message, /^reason: /);
      const unknown = await call(api, "POST", `${base}/dispense`, {
        token,
        body: { orderId: unknownOrderId },
      });
      assert.equal(unknown.status, 404);
    });

    await t.step("safety reset, maintenance mode, service", async () => {
      const s = await call(api, "POST", `${base}/safety/reset`, {
        token,
        body: { performedBy: "Ann" },
      });
      assert.equal(s.status, 200);
      assert.equal(s.json.tripped, false);
      assert.deepEqual(last(), { verb: "safety.reset", payload: { performedBy: "Ann" } });
      const audit = m.api.logLines.map((l) => JSON.parse(l)).find((l) =>
        l.msg === "technician request" && l.path.endsWith("/safety/reset")
      );
      assert.equal(audit?.status, 200);
      const mm = await call(api, "POST", `${base}/maintenance-mode`, {
        token,
        body: { enable: true, reason: "Cleaning" },
      });
      assert.equal(mm.status, 200);
      assert.deepEqual(mm.json, {
        success: true,
        status: "MAINTENANCE",
        maintenance: true,
        reason: "Cleaning",
      });
      assert.deepEqual(last(), {
        verb: "supervisor.maintenance",
        payload: { enable: true, reason: "Cleaning" },
      });
      const sv = await call(api, "POST", `${base}/service`, { token });
      assert.equal(sv.status, 200);
      assert.deepEqual(last(), {
        verb: "carousel.service",
        payload: { performedBy: "technician", note: "" },
      });
    });

    await t.step(
      "POST restock turns expiration dates into expiresAt and passes its key on",
      async () => {
        const r = await call(api, "POST", `${base}/restock`, {
          token,
          body: {
            items: [
              { pizzaId: "margherita", quantity: 4, storageSlot: 1, expirationDate: "2030-01-31" },
              {
                pizzaId: "margherita",
                quantity: 2,
                storageSlot: 2,
                expirationDate: "2030-02-01T12:00:00Z",
              },
            ],
            performedBy: "Ann",
          },
        });
        assert.equal(r.status, 200);
        assert.deepEqual(last(), {
          verb: "carousel.restock",
          payload: {
            items: [
              {
                pizzaId: "margherita",
                quantity: 4,
                storageSlot: 1,
                expiresAt: Date.UTC(2030, 0, 31),
              },
              {
                pizzaId: "margherita",
                quantity: 2,
                storageSlot: 2,
                expiresAt: Date.UTC(2030, 1, 1, 12),
              },
            ],
            performedBy: "Ann",
          },
        });
        const keyed = await call(api, "POST", `${base}/restock`, {
          token,
          body: {
            items: [{
              pizzaId: "veggie",
              quantity: 1,
              storageSlot: 3,
              expirationDate: "2030-01-31",
            }],
          },
          headers: { "Idempotency-Key": "van-7:visit-3" },
        });
        assert.equal(keyed.status, 200);
        assert.equal(last()?.payload.idempotencyKey, "van-7:visit-3");
        const bad = await call(api, "POST", `${base}/restock`, {
          token,
          body: { items: [{ pizzaId: "m", quantity: 0, storageSlot: 1, expirationDate: "soon" }] },
        });
        assert.equal(bad.status, 400);
        assert.match(
          (bad.json.error as { message: string }).message,
          /items\.0\.quantity: .*; items\.0\.expirationDate: must be an ISO date/,
        );
      },
    );

    await t.step("GET status merges supervisor, oven, storage and safety", async () => {
      const r = await call(api, "GET", `${base}/status`, { token });
      assert.equal(r.status, 200);
      assert.equal(r.json.machineId, m.machineId);
      assert.equal(r.json.status, "OPERATIONAL");
      assert.equal((r.json.oven as { state: string }).state, "cooking");
      assert.equal((r.json.carousel as { storageTempC: number }).storageTempC, 3.5);
      assert.equal((r.json.safety as { tripped: boolean }).tripped, false);
      assert.deepEqual(r.json.unavailable, {});
      m.script.set("oven.status", fail("UNAVAILABLE", "oven is not answering"));
      const partial = await call(api, "GET", `${base}/status`, { token });
      m.script.clear();
      assert.equal(partial.status, 200);
      assert.equal(partial.json.oven, null);
      assert.deepEqual(partial.json.unavailable, { oven: "UNAVAILABLE: oven is not answering" });
    });

    await t.step("GET inventory", async () => {
      const r = await call(api, "GET", `${base}/inventory`, { token });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json.available, { margherita: 3 });
      assert.equal(last()?.verb, "carousel.inventory");
    });

    await t.step("another machine's id is 404 even with the token", async () => {
      const r = await call(api, "GET", `/api/v1/machine/someone-else/inventory`, { token });
      assert.equal(r.status, 404);
    });

    await t.step("a FAULT refusal is 409 with its message", async () => {
      m.script.set("oven.cook", fail("FAULT", "Oven is in fault OVER_TEMPERATURE"));
      const r = await call(api, "POST", `${base}/cook`, {
        token,
        body: { orderId: knownOrderId, pizzaId: "margherita", storageSlot: 2 },
      });
      m.script.clear();
      assert.equal(r.status, 409);
      assert.deepEqual(r.json, {
        error: { code: "FAULT", message: "Oven is in fault OVER_TEMPERATURE" },
      });
    });
  } finally {
    await m.close();
  }
});

Deno.test("machine API: health, kiosk, OpenAPI document, timeouts", async (t) => {
  const m = await startTestMachine();
  const api = m.machineApi;
  try {
    await t.step("GET /health", async () => {
      const r = await call(api, "GET", "/health");
      assert.equal(r.status, 200);
      assert.equal(r.json.status, "ok");
      assert.equal(r.json.machineId, m.machineId);
    });

    await t.step("GET / serves the kiosk page for this machine", async () => {
      const res = await api.app.request("/");
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /text\/html/);
      const html = await res.text();
      assert.match(html, /<script>/);
      assert.ok(html.includes(JSON.stringify({ machineId: m.machineId })));
      for (const path of ["/menu", "/order", "/payment", "/status", "/pickup", "/cancel"]) {
        assert.ok(html.includes(path), path);
      }
    });

    await t.step("/openapi.json lists every path with the technician scheme", async () => {
      const res = await api.app.request("/openapi.json");
      assert.equal(res.status, 200);
      const doc = await res.json();
      const m = "/api/v1/machine/{machineId}";
      const expected: [string, string][] = [
        ["/health", "get"],
        [`${m}/menu`, "get"],
        [`${m}/order`, "post"],
        ["/api/v1/order/{orderId}/payment", "post"],
        ["/api/v1/order/{orderId}/status", "get"],
        ["/api/v1/order/{orderId}/pickup", "post"],
        ["/api/v1/order/{orderId}/cancel", "post"],
        [`${m}/cook`, "post"],
        [`${m}/cooking-status`, "get"],
        [`${m}/dispense`, "post"],
        [`${m}/cancel-order`, "post"],
        [`${m}/safety/reset`, "post"],
        [`${m}/maintenance-mode`, "post"],
        [`${m}/restock`, "post"],
        [`${m}/service`, "post"],
        [`${m}/status`, "get"],
        [`${m}/inventory`, "get"],
        [`${m}/live`, "get"],
      ];
      assert.deepEqual(Object.keys(doc.paths).sort(), expected.map(([p]) => p).sort());
      for (const [path, method] of expected) assert.ok(doc.paths[path][method], path);
      assert.deepEqual(doc.paths[`${m}/cook`].post.security, [{ technicianToken: [] }]);
      assert.equal(doc.paths[`${m}/menu`].get.security, undefined);
      assert.equal(doc.components.securitySchemes.technicianToken.scheme, "bearer");
    });

    await t.step("unknown paths are 404 with the error body", async () => {
      const r = await call(api, "GET", "/api/v1/nothing");
      assert.equal(r.status, 404);
      assert.equal((r.json.error as { code: string }).code, "NOT_FOUND");
    });

    await t.step("the live feed without an upgrade is 400; another machine's is 404", async () => {
      const plain = await call(api, "GET", `/api/v1/machine/${m.machineId}/live`);
      assert.equal(plain.status, 400);
      const other = await call(api, "GET", `/api/v1/machine/someone-else/live`);
      assert.equal(other.status, 404);
    });
  } finally {
    await m.close();
  }
});

Deno.test("machine API: a command that never answers is 504", async () => {
  // A fast clock on the API's bus lets the 5 s deadline pass in a few wall ms.
  const m = await startTestMachine({ speed: 200 });
  try {
    m.silent.add("order.get");
    const r = await call(m.machineApi, "GET", `/api/v1/order/${knownOrderId}/status`);
    assert.equal(r.status, 504);
    assert.equal((r.json.error as { code: string }).code, "TIMEOUT");
  } finally {
    await m.close();
  }
});

Deno.test("machine API: live feed over a real WebSocket", async (t) => {
  const m = await startTestMachine();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    m.machineApi.fetch,
  );
  const { port } = server.addr;
  const received: LiveMessage[] = [];
  let socket: WebSocket | null = null;
  try {
    await t.step("the socket opens and gets CONNECTED once subscribed", async () => {
      socket = new WebSocket(`ws://127.0.0.1:${port}/api/v1/machine/${m.machineId}/live`);
      socket.onmessage = (e) => received.push(LiveMessage.parse(JSON.parse(String(e.data))));
      await waitFor("CONNECTED", () => received.some((x) => x.type === "CONNECTED") || undefined);
      assert.equal(m.machineApi.openSockets(), 1);
    });

    await t.step("order updated → ORDER_UPDATE, oven progress → COOKING_PROGRESS", async () => {
      const sent = m.actors.bus.publish(order.updated, {
        order: { ...sampleOrder(m.actors.clock, m.machineId), status: "PREPARING" },
      });
      const progress = m.actors.bus.publish(oven.progress, {
        orderId: knownOrderId,
        sessionId: "session-1",
        temperatureC: 245.2,
        timeRemainingMs: 30_200,
        status: "COOKING",
      });
      const update = await waitFor(
        "ORDER_UPDATE",
        () => received.find((x) => x.type === "ORDER_UPDATE"),
      );
      assert.deepEqual(update, {
        type: "ORDER_UPDATE",
        orderId: knownOrderId,
        status: "PREPARING",
        queuePosition: 2,
        timestamp: sent.ts,
      });
      const cooking = await waitFor(
        "COOKING_PROGRESS",
        () => received.find((x) => x.type === "COOKING_PROGRESS"),
      );
      assert.deepEqual(cooking, {
        type: "COOKING_PROGRESS",
        orderId: knownOrderId,
        sessionId: "session-1",
        status: "COOKING",
        temperature: 245.2,
        timeRemaining: 31,
        timestamp: progress.ts,
      });
    });

    await t.step("a safety trip → EQUIPMENT_ERROR on the component it concerns", async () => {
      const trip = m.actors.bus.publish(safety.tripped, { causes: ["SMOKE"], latchedAt: 5 });
      const error = await waitFor(
        "EQUIPMENT_ERROR",
        () => received.find((x) => x.type === "EQUIPMENT_ERROR"),
      );
      assert.deepEqual({ ...error, message: "" }, {
        type: "EQUIPMENT_ERROR",
        component: "OVEN",
        errorCode: "SAFETY_SMOKE",
        message: "",
        timestamp: trip.ts,
      });
    });

    await t.step("closing the socket drops its subscriptions", async () => {
      const closed = new Promise((resolve) => socket!.addEventListener("close", resolve));
      socket!.close();
      await closed;
      await waitFor(
        "server to drop the socket",
        () => m.machineApi.openSockets() === 0 || undefined,
      );
    });

    await t.step("closing the API closes its sockets (1001)", async () => {
      const other = new WebSocket(`ws://127.0.0.1:${port}/api/v1/machine/${m.machineId}/live`);
      const closed = new Promise<CloseEvent>((resolve) => other.addEventListener("close", resolve));
      await new Promise((resolve) => other.addEventListener("message", resolve, { once: true }));
      assert.equal(m.machineApi.openSockets(), 1);
      m.machineApi.close();
      assert.equal((await closed).code, 1001);
      assert.equal(m.machineApi.openSockets(), 0);
    });
  } finally {
    m.machineApi.close();
    await server.shutdown();
    await m.close();
  }
});

Deno.test("live translator: bands alert once, faults and trips name the component", () => {
  const t = new LiveTranslator();
  const env = { id: "e", machineId: "m", ts: 1000 };
  const sample = (temperatureC: number, state: "cooking" | "holding") =>
    t.ovenTemperature({ ...env, temperatureC, targetC: 250, heaterPct: 50, state });
  assert.deepEqual(sample(245, "cooking"), []);
  assert.equal(sample(200, "holding").length, 0, "off target but not cooking");
  const alert = sample(200, "cooking");
  assert.equal(alert.length, 1);
  assert.deepEqual({ ...alert[0], reason: "" }, {
    type: "TEMPERATURE_ALERT",
    zone: "OVEN",
    currentTemp: 200,
    targetTemp: 250,
    reason: "",
    timestamp: 1000,
  });
  assert.deepEqual(sample(199, "cooking"), [], "still off target: no repeat");
  assert.deepEqual(sample(249, "cooking"), []);
  assert.equal(sample(300, "cooking").length, 1, "off target again after recovering");

  const fault = t.ovenFault({
    ...env,
    code: "OVER_TEMPERATURE",
    message: "Oven above its limit",
    temperatureC: 320,
    activeOrderId: null,
  });
  assert.deepEqual(fault.map((x) => x.type), ["TEMPERATURE_ALERT", "EQUIPMENT_ERROR"]);
  const slow = t.ovenFault({
    ...env,
    code: "HEATING_TOO_SLOW",
    message: "slow",
    temperatureC: 100,
    activeOrderId: null,
  });
  assert.deepEqual(slow.map((x) => x.type), ["EQUIPMENT_ERROR"]);

  const storage = (storageTempC: number) =>
    t.storageTemperature({ ...env, storageTempC, salesStopped: false });
  assert.deepEqual(storage(4), []);
  assert.equal(storage(6.5).length, 1);
  assert.deepEqual(storage(7), []);
  const stopped = t.storageSales({ ...env, stopped: true, reason: "Above 5 °C for 2 h" });
  assert.equal(stopped[0]?.type === "TEMPERATURE_ALERT" && stopped[0].currentTemp, 7);
  assert.deepEqual(t.storageSales({ ...env, stopped: false, reason: null }), []);

  const trips = t.safetyTripped({ ...env, causes: ["ESTOP", "STORAGE_DANGER_ZONE"], latchedAt: 1 });
  assert.deepEqual(
    trips.map((x) => x.type === "EQUIPMENT_ERROR" && [x.component, x.errorCode]),
    [["DISPENSER", "SAFETY_ESTOP"], ["STORAGE", "SAFETY_STORAGE_DANGER_ZONE"]],
  );
  const jam = t.armFault({ ...env, code: "JAM", message: "Arm jammed", activeOrderId: null });
  assert.equal(jam[0]?.type === "EQUIPMENT_ERROR" && jam[0].component, "DISPENSER");
  const offline = t.readerChanged({ ...env, cardReaderOnline: false });
  assert.equal(offline[0]?.type === "EQUIPMENT_ERROR" && offline[0].component, "PAYMENT");
  assert.deepEqual(t.readerChanged({ ...env, cardReaderOnline: true }), []);
});
