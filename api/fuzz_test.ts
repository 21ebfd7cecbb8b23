/**
 * Property tests of the machine API's door: whatever body, path or token
 * arrives, the answer is a 4xx (never a 5xx, never a crash), and a body that
 * the route's schema refuses never reaches the bus. The fake machine refuses
 * every command with CONFLICT, so a body that does pass answers 409.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { z } from "zod";
import { fail, OrderId } from "../protocol/define.ts";
import { CreateOrderBody, CustomerCancelBody, PayBody, PickupBody } from "./customer_routes.ts";
import {
  CookBody,
  DispenseBody,
  MaintenanceBody,
  RestockBody,
  SafetyResetBody,
  ServiceBody,
  TechnicianCancelBody,
} from "./control_routes.ts";
import { call, knownOrderId, startTestMachine, testToken } from "./test_machine.ts";

interface PostRoute {
  path: (machineId: string) => string;
  schema: z.ZodType;
  technician: boolean;
  /** A body the schema accepts, to mutate one field at a time. */
  valid: Record<string, unknown>;
}

const machinePath = (tail: string) => (id: string) => `/api/v1/machine/${id}/${tail}`;
const orderPath = (tail: string) => () => `/api/v1/order/${knownOrderId}/${tail}`;

const routes: Record<string, PostRoute> = {
  order: {
    path: machinePath("order"),
    schema: CreateOrderBody,
    technician: false,
    valid: { pizzaId: "margherita", customerEmail: "ann@example.com" },
  },
  payment: {
    path: orderPath("payment"),
    schema: PayBody,
    technician: false,
    valid: { method: "CARD", paymentDetails: { token: "tok_visa" } },
  },
  pickup: {
    path: orderPath("pickup"),
    schema: PickupBody,
    technician: false,
    valid: { pickupCode: "1234" },
  },
  cancel: {
    path: orderPath("cancel"),
    schema: CustomerCancelBody,
    technician: false,
    valid: { reason: "Changed my mind" },
  },
  cook: {
    path: machinePath("cook"),
    schema: CookBody,
    technician: true,
    valid: { orderId: knownOrderId, pizzaId: "margherita", storageSlot: 1 },
  },
  dispense: {
    path: machinePath("dispense"),
    schema: DispenseBody,
    technician: true,
    valid: { orderId: knownOrderId },
  },
  "cancel-order": {
    path: machinePath("cancel-order"),
    schema: TechnicianCancelBody,
    technician: true,
    valid: { orderId: knownOrderId, reason: "Oven fault" },
  },
  "safety/reset": {
    path: machinePath("safety/reset"),
    schema: SafetyResetBody,
    technician: true,
    valid: { performedBy: "Ann" },
  },
  "maintenance-mode": {
    path: machinePath("maintenance-mode"),
    schema: MaintenanceBody,
    technician: true,
    valid: { enable: true, reason: "Cleaning" },
  },
  restock: {
    path: machinePath("restock"),
    schema: RestockBody,
    technician: true,
    valid: {
      items: [{ pizzaId: "margherita", quantity: 2, storageSlot: 1, expirationDate: "2030-01-31" }],
      performedBy: "Ann",
    },
  },
  service: {
    path: machinePath("service"),
    schema: ServiceBody,
    technician: true,
    valid: { performedBy: "Ann", note: "Cleaned the fridge" },
  },
};

/** Bodies from anything through "one field wrong" to valid with extra keys, as raw text. */
function bodies(route: PostRoute): fc.Arbitrary<string> {
  const keys = Object.keys(route.valid);
  const anyJson = fc.jsonValue().map((v) => JSON.stringify(v));
  const keyed = fc.dictionary(fc.constantFrom(...keys), fc.jsonValue()).map((v) =>
    JSON.stringify(v)
  );
  const oneFieldWrong = fc.record({ key: fc.constantFrom(...keys), value: fc.jsonValue() }).map((
    { key, value },
  ) => JSON.stringify({ ...route.valid, [key]: value }));
  const oneFieldGone = fc.constantFrom(...keys).map((key) => {
    const { [key]: _gone, ...rest } = route.valid;
    return JSON.stringify(rest);
  });
  const validWithExtras = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()).map((extra) =>
    JSON.stringify({ ...extra, ...route.valid })
  );
  const text = fc.string({ maxLength: 200 });
  return fc.oneof(anyJson, keyed, oneFieldWrong, oneFieldGone, validWithExtras, text);
}

function acceptedBy(schema: z.ZodType, raw: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return false;
  }
  return schema.safeParse(value).success;
}

const numRuns = 150;

Deno.test("fuzz: every POST route answers 4xx and lets no invalid body through", async (t) => {
  const m = await startTestMachine();
  m.refuseAll = fail("CONFLICT", "Refused by the fuzz machine");
  try {
    for (const [name, route] of Object.entries(routes)) {
      await t.step(`POST ${name}`, async () => {
        await fc.assert(
          fc.asyncProperty(bodies(route), async (raw) => {
            const before = m.received.length;
            const r = await call(m.machineApi, "POST", route.path(m.machineId), {
              rawBody: raw,
              ...(route.technician ? { token: testToken } : {}),
            });
            assert.ok(r.status >= 400 && r.status < 500, `status ${r.status} for ${raw}`);
            const reached = m.received.length > before;
            if (acceptedBy(route.schema, raw)) {
              assert.equal(r.status, 409, `a valid body is refused by the machine: ${raw}`);
              assert.ok(reached, `a valid body reaches the bus: ${raw}`);
            } else {
              assert.equal(r.status, 400, `an invalid body is a 400: ${raw}`);
              assert.equal(reached, false, `an invalid body reaches nobody: ${raw}`);
              assert.equal((r.json.error as { code: string }).code, "BAD_REQUEST");
            }
          }),
          { numRuns },
        );
      });
    }
  } finally {
    await m.close();
  }
});

Deno.test("fuzz: path ids and tokens answer 4xx and reach nobody", async (t) => {
  const m = await startTestMachine();
  m.refuseAll = fail("CONFLICT", "Refused by the fuzz machine");
  const printable = fc.string({ unit: "binary-ascii", maxLength: 80 }).filter((s) =>
    /^[\x20-\x7e]*$/.test(s)
  );
  try {
    await t.step("any machine id other than ours is 4xx and reaches nobody", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.string({ maxLength: 80 }).filter((s) => s !== m.machineId),
          fc.constantFrom("menu", "order", "cook", "status", "inventory", "restock"),
          async (id, tail) => {
            const before = m.received.length;
            const method = ["menu", "status", "inventory"].includes(tail) ? "GET" : "POST";
            const r = await call(m.machineApi, method, machinePath(tail)(encodeURIComponent(id)), {
              token: testToken,
              ...(method === "POST" ? { body: routes[tail]?.valid ?? {} } : {}),
            });
            assert.ok(r.status >= 400 && r.status < 500, `status ${r.status} for ${id}`);
            assert.equal(m.received.length, before);
          },
        ),
        { numRuns },
      );
    });

    await t.step("any order id is 4xx; one that is not a UUID reaches nobody", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.string({ maxLength: 80 }), fc.uuid()),
          fc.constantFrom("payment", "status", "pickup", "cancel"),
          async (id, tail) => {
            const before = m.received.length;
            const method = tail === "status" ? "GET" : "POST";
            const r = await call(
              m.machineApi,
              method,
              `/api/v1/order/${encodeURIComponent(id)}/${tail}`,
              method === "POST" ? { body: routes[tail]?.valid ?? {} } : {},
            );
            assert.ok(r.status >= 400 && r.status < 500, `status ${r.status} for ${id}`);
            if (!OrderId.safeParse(id).success) {
              assert.equal(m.received.length, before, `"${id}" reached the bus`);
            }
          },
        ),
        { numRuns },
      );
    });

    await t.step("any bearer token but the right one is 401 or 403", async () => {
      await fc.assert(
        fc.asyncProperty(printable.filter((s) => s.trim() !== testToken), async (token) => {
          const before = m.received.length;
          const res = await m.machineApi.app.request(
            `/api/v1/machine/${m.machineId}/dispense`,
            {
              method: "POST",
              headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
              body: JSON.stringify({ orderId: knownOrderId }),
            },
          );
          await res.body?.cancel();
          assert.ok(res.status === 401 || res.status === 403, `status ${res.status}`);
          assert.equal(m.received.length, before);
        }),
        { numRuns },
      );
    });
  } finally {
    await m.close();
  }
});
