/**
 * Stock (seed 003 §4.3, §4.4): a machine's inventory with its low-stock
 * items, low inventory across the fleet, and restock, recorded as a
 * maintenance log and sent to the machine's carousel over NATS.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import * as carousel from "../../protocol/carousel.ts";
import { RestockBody } from "../../api/control_routes.ts";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { lowInventory, machineInventory } from "../admin/fleet.ts";
import { addMaintenanceLog, completeMaintenanceLog } from "../admin/audit.ts";
import { LowInventoryMachine, MachineInventory } from "../admin/views.ts";
import {
  type AdminDeps,
  adminRoutes,
  audit,
  identityOf,
  jsonBody,
  jsonResponse,
  machineFailure,
  MachinePath,
  unknownMachine,
} from "./common.ts";

const RestockOutcome = z.object({
  success: z.boolean(),
  machineId: z.string(),
  /** The maintenance log recording the restock. */
  logId: z.string(),
  /** Sellable pizzas per pizzaId after the restock, as the machine counts them. */
  available: z.record(z.string(), z.number().int()),
});

/** The inventory sub-app. */
export function inventoryRoutes(deps: AdminDeps): OpenAPIHono {
  const { db } = deps;
  const app = createSubApp(deps.log);
  const route = adminRoutes(db, "inventory");

  const inventoryRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/machine/{machineId}/inventory",
    summary: "The machine's stock and its pizzas below their minimum",
    request: { params: MachinePath },
    responses: { 200: jsonResponse(MachineInventory, "Stock as last reported") },
  });
  app.openapi(inventoryRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const unknown = await unknownMachine(deps, c, machineId);
    if (unknown) return unknown;
    return c.json(await machineInventory(db, machineId), 200);
  });

  const lowRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/low-inventory",
    summary: "Machines with pizzas below their minimum",
    responses: {
      200: jsonResponse(z.object({ machines: z.array(LowInventoryMachine) }), "By machine"),
    },
  });
  app.openapi(lowRoute, async (c) => c.json({ machines: await lowInventory(db) }, 200));

  const restockRoute = route("technician", {
    method: "post",
    path: "/api/v1/admin/machine/{machineId}/restock",
    summary: "Records a restock and sends it to the machine; answers when the machine accepts",
    description: "An expiration date alone means its first instant in UTC (the safe side). " +
      "The maintenance log is written first and says how it ended.",
    request: { params: MachinePath, body: jsonBody(RestockBody) },
    responses: { 200: jsonResponse(RestockOutcome, "The machine took the pizzas") },
  });
  app.openapi(restockRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const { items, performedBy } = c.req.valid("json");
    const unknown = await unknownMachine(deps, c, machineId);
    if (unknown) return unknown;
    const who = performedBy ?? identityOf(c).name;
    const lines = items.map(({ expirationDate, ...line }) => ({
      ...line,
      expiresAt: Date.parse(expirationDate),
    }));
    const logId = await addMaintenanceLog(db, {
      machineId,
      type: "RESTOCKING",
      performedBy: who,
      description: `Restock: ${
        lines.map((l) => `${l.quantity} × ${l.pizzaId} in slot ${l.storageSlot}`).join(", ")
      }`,
      details: { items: lines, outcome: "sent" },
      atMs: deps.clock.now(),
      completed: false,
    }, deps.random);
    if (!deps.bus) {
      await completeMaintenanceLog(db, machineId, logId, null, { outcome: "UNAVAILABLE" });
      await audit(deps, c, "restock", machineId, "UNAVAILABLE", { logId });
      return errorResponse(c, "UNAVAILABLE", "The cloud has no NATS connection to machines");
    }
    const r = await deps.bus.request(carousel.restock, { items: lines, performedBy: who }, {
      machineId,
      timeoutMs: deps.commandTimeoutMs,
    });
    if (!r.ok) {
      await completeMaintenanceLog(db, machineId, logId, null, {
        outcome: r.error.code,
        message: r.error.message,
      });
      await audit(deps, c, "restock", machineId, r.error.code, { logId });
      return machineFailure(c, deps, machineId, "the restock", r.error);
    }
    await completeMaintenanceLog(db, machineId, logId, deps.clock.now(), {
      outcome: "accepted",
      available: r.value.available,
    });
    await audit(deps, c, "restock", machineId, "ok", { logId, items: lines.length });
    return c.json({ success: true, machineId, logId, available: r.value.available }, 200);
  });

  return app;
}
