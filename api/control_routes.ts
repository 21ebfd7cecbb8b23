/**
 * The technician's routes (seed 003 §4.2, and §4.3/§4.4 for what a technician
 * does on site): cook, cooking status, dispense, cancel, safety reset,
 * maintenance mode, restock, service, machine status, inventory. All want the
 * technician token; each maps onto one bus command (status onto four).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../log/log.ts";
import { z } from "zod";
import * as order from "../protocol/order.ts";
import * as oven from "../protocol/oven.ts";
import * as carousel from "../protocol/carousel.ts";
import * as safety from "../protocol/safety.ts";
import * as supervisor from "../protocol/supervisor.ts";
import { OrderId, type ReplyError } from "../protocol/define.ts";
import { CookingStatus } from "../protocol/entities.ts";
import { requireTechnician, technicianScheme } from "./auth.ts";
import {
  type ApiDeps,
  commandTimeoutMs,
  createSubApp,
  fieldsOf,
  IdempotencyHeaders,
  jsonBody,
  jsonResponse,
  keyOf,
  MachineParams,
  ourMachine,
  routeDeclarer,
} from "./context.ts";
import { errorResponse, failedResponse } from "./errors.ts";

/** Body of `POST …/cook`: the seed's fields; temperature and time come from the menu. */
export const CookBody = z.object({
  orderId: OrderId,
  pizzaId: z.string().min(1).max(64),
  /** Where the pizza came from; checked for shape, kept for the record. */
  storageSlot: carousel.RestockLine.shape.storageSlot,
});

/** Body of `POST …/dispense`. */
export const DispenseBody = fieldsOf(order.dispense, ["orderId"]);

/** Body of `POST …/cancel-order`: a technician must say why. */
export const TechnicianCancelBody = fieldsOf(order.cancel, ["orderId", "reason"]);

/** Body of `POST …/safety/reset`. */
export const SafetyResetBody = fieldsOf(safety.reset, ["performedBy"]);

/** Body of `POST …/maintenance-mode`. */
export const MaintenanceBody = fieldsOf(supervisor.maintenance, ["enable", "reason"]);

/**
 * An expiration date as ISO date (`2030-01-31`, meaning its first instant in
 * UTC: the safe side for food) or ISO date-time with offset.
 */
export const ExpirationDate = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: "must be an ISO date (2030-01-31) or date-time (2030-01-31T12:00:00Z)",
}).refine((s) => Date.parse(s) > 0, "must be after 1970-01-01");

/** One restock line of the seed (§4.4): `expirationDate` instead of `expiresAt`. */
export const RestockItem = carousel.RestockLine.omit({ expiresAt: true }).extend({
  expirationDate: ExpirationDate,
});

/** Body of `POST …/restock`. */
export const RestockBody = z.object({
  items: z.array(RestockItem).min(1).max(100),
  performedBy: z.string().min(1).max(100).optional(),
});

/** Body of `POST …/service` (optional). */
export const ServiceBody = z.object({
  performedBy: z.string().min(1).max(100).optional(),
  note: z.string().max(500).optional(),
});

const CookResult = z.object({
  sessionId: z.string(),
  /** Epoch ms the pizza should be baked by. */
  estimatedCompletion: z.number().int(),
  status: CookingStatus,
  targetTemperature: z.number(),
});

const CookingStatusView = z.object({
  /** Null when no session runs. */
  sessionId: z.string().nullable(),
  orderId: z.string().nullable(),
  currentTemperature: z.number(),
  targetTemperature: z.number(),
  /** Seconds of baking still owed. */
  timeRemaining: z.number().int().nonnegative(),
  /** The session's status, or null when no session runs. */
  status: CookingStatus.nullable(),
  ovenState: oven.OvenState,
  heaterPct: z.number(),
  fault: oven.OvenFault.nullable(),
});

const Outcome = z.object({ success: z.boolean(), message: z.string() });

const CancelOutcome = z.object({
  success: z.boolean(),
  refundInitiated: z.boolean(),
  status: order.OrderView.shape.status,
});

const MaintenanceOutcome = z.object({
  success: z.boolean(),
  status: supervisor.SupervisorStatus.shape.status,
  maintenance: z.boolean(),
  reason: z.string().nullable(),
});

const MachineStatusView = supervisor.SupervisorStatus.extend({
  machineId: z.string(),
  oven: oven.OvenStatus.nullable(),
  carousel: carousel.Inventory.nullable(),
  safety: safety.SafetyStatus.nullable(),
  /** Components that did not answer, with why. */
  unavailable: z.record(z.string(), z.string()),
});

const controlRoute = routeDeclarer("control", [{ [technicianScheme]: [] }]);

const cookRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/cook",
  summary: "Bakes the order's pizza at its menu temperature and time",
  request: { params: MachineParams, body: jsonBody(CookBody) },
  responses: { 200: jsonResponse(CookResult, "The cooking session") },
});

const cookingStatusRoute = controlRoute({
  method: "get",
  path: "/api/v1/machine/{machineId}/cooking-status",
  summary: "The oven and its cooking session",
  request: { params: MachineParams },
  responses: { 200: jsonResponse(CookingStatusView, "The oven") },
});

const dispenseRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/dispense",
  summary: "Hands a READY pizza out without its pickup code",
  request: { params: MachineParams, body: jsonBody(DispenseBody) },
  responses: { 200: jsonResponse(Outcome, "Whether it was handed out") },
});

const cancelOrderRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/cancel-order",
  summary: "Cancels any order not yet dispensed, refunding what was paid",
  request: { params: MachineParams, body: jsonBody(TechnicianCancelBody) },
  responses: { 200: jsonResponse(CancelOutcome, "The order was cancelled") },
});

const safetyResetRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/safety/reset",
  summary: "Resets a safety trip once every cause has cleared",
  request: { params: MachineParams, body: jsonBody(SafetyResetBody) },
  responses: { 200: jsonResponse(safety.SafetyStatus, "The safety state") },
});

const maintenanceRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/maintenance-mode",
  summary: "Enters or leaves maintenance mode; orders in flight finish",
  request: { params: MachineParams, body: jsonBody(MaintenanceBody) },
  responses: { 200: jsonResponse(MaintenanceOutcome, "The machine's mode") },
});

const restockRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/restock",
  summary: "Loads pizzas into storage",
  request: { params: MachineParams, headers: IdempotencyHeaders, body: jsonBody(RestockBody) },
  responses: { 200: jsonResponse(carousel.Inventory, "Stock after restocking") },
});

const serviceRoute = controlRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/service",
  summary: "Storage was serviced: sales resume once it holds 5 °C",
  request: { params: MachineParams, body: jsonBody(ServiceBody, false) },
  responses: { 200: jsonResponse(carousel.Inventory, "Stock and food safety") },
});

const machineStatusRoute = controlRoute({
  method: "get",
  path: "/api/v1/machine/{machineId}/status",
  summary: "The machine: supervisor, oven, storage and safety in one view",
  request: { params: MachineParams },
  responses: { 200: jsonResponse(MachineStatusView, "The machine") },
});

const inventoryRoute = controlRoute({
  method: "get",
  path: "/api/v1/machine/{machineId}/inventory",
  summary: "Stock and food-safety state",
  request: { params: MachineParams },
  responses: { 200: jsonResponse(carousel.Inventory, "Stock") },
});

/** Logs every technician request that passed the guards, with its outcome (never its body). */
function audit(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    await next();
    log.log("info", "technician request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
    });
  };
}

/** The technician's routes. */
export function controlRoutes(deps: ApiDeps): OpenAPIHono {
  const { bus } = deps;
  const app = createSubApp(deps.log);
  const timeout = { timeoutMs: commandTimeoutMs };
  const guards = [requireTechnician(deps.techToken), ourMachine(deps.machineId), audit(deps.log)];
  const guard = (route: { getRoutingPath(): string }) => app.use(route.getRoutingPath(), ...guards);

  guard(cookRoute);
  app.openapi(cookRoute, async (c) => {
    const { orderId, pizzaId } = c.req.valid("json");
    const menu = await bus.request(order.menu, {}, timeout);
    if (!menu.ok) return failedResponse(c, menu);
    const pizza = menu.value.pizzas.find((p) => p.pizzaId === pizzaId);
    if (!pizza) return errorResponse(c, "NOT_FOUND", `Pizza "${pizzaId}" is not on the menu`);
    const r = await bus.request(oven.cook, {
      orderId,
      pizzaId,
      targetC: pizza.cookingTempC,
      cookTimeMs: pizza.cookingTimeMs,
    }, timeout);
    if (!r.ok) return failedResponse(c, r);
    const s = r.value;
    return c.json({
      sessionId: s.sessionId,
      estimatedCompletion: s.estimatedCompletion,
      status: s.status,
      targetTemperature: s.targetTemperatureC,
    }, 200);
  });

  guard(cookingStatusRoute);
  app.openapi(cookingStatusRoute, async (c) => {
    const r = await bus.request(oven.status, {}, timeout);
    if (!r.ok) return failedResponse(c, r);
    const o = r.value;
    return c.json({
      sessionId: o.session?.sessionId ?? null,
      orderId: o.session?.orderId ?? null,
      currentTemperature: o.temperatureC,
      targetTemperature: o.session?.targetTemperatureC ?? o.targetC,
      timeRemaining: Math.ceil((o.session?.timeRemainingMs ?? 0) / 1000),
      status: o.session?.status ?? null,
      ovenState: o.state,
      heaterPct: o.heaterPct,
      fault: o.fault,
    }, 200);
  });

  guard(dispenseRoute);
  app.openapi(dispenseRoute, async (c) => {
    const { orderId } = c.req.valid("json");
    const r = await bus.request(order.dispense, { orderId }, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  guard(cancelOrderRoute);
  app.openapi(cancelOrderRoute, async (c) => {
    const { orderId, reason } = c.req.valid("json");
    const r = await bus.request(order.cancel, { orderId, reason, by: "TECHNICIAN" }, timeout);
    if (!r.ok) return failedResponse(c, r);
    const { success, refundInitiated } = r.value;
    return c.json({ success, refundInitiated, status: r.value.order.status }, 200);
  });

  guard(safetyResetRoute);
  app.openapi(safetyResetRoute, async (c) => {
    const { performedBy } = c.req.valid("json");
    const r = await bus.request(safety.reset, { performedBy }, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  guard(maintenanceRoute);
  app.openapi(maintenanceRoute, async (c) => {
    const { enable, reason } = c.req.valid("json");
    const r = await bus.request(supervisor.maintenance, { enable, reason }, timeout);
    if (!r.ok) return failedResponse(c, r);
    const s = r.value;
    return c.json({
      success: s.maintenance === enable,
      status: s.status,
      maintenance: s.maintenance,
      reason: s.reason,
    }, 200);
  });

  guard(restockRoute);
  app.openapi(restockRoute, async (c) => {
    const { items, performedBy } = c.req.valid("json");
    const lines = items.map(({ expirationDate, ...line }) => ({
      ...line,
      expiresAt: Date.parse(expirationDate),
    }));
    const r = await bus.request(carousel.restock, {
      items: lines,
      performedBy: performedBy ?? "technician",
      ...keyOf(c.req.valid("header")),
    }, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  guard(serviceRoute);
  app.openapi(serviceRoute, async (c) => {
    const { performedBy, note } = c.req.valid("json");
    const r = await bus.request(carousel.service, {
      performedBy: performedBy ?? "technician",
      note: note ?? "",
    }, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  guard(machineStatusRoute);
  app.openapi(machineStatusRoute, async (c) => {
    const [sup, ov, car, saf] = await Promise.all([
      bus.request(supervisor.status, {}, timeout),
      bus.request(oven.status, {}, timeout),
      bus.request(carousel.inventory, {}, timeout),
      bus.request(safety.status, {}, timeout),
    ]);
    if (!sup.ok) return failedResponse(c, sup);
    const unavailable: Record<string, string> = {};
    const part = <T>(
      name: string,
      r: { ok: true; value: T } | { ok: false; error: ReplyError },
    ) => {
      if (r.ok) return r.value;
      unavailable[name] = `${r.error.code}: ${r.error.message}`;
      return null;
    };
    return c.json({
      machineId: deps.machineId,
      ...sup.value,
      oven: part("oven", ov),
      carousel: part("carousel", car),
      safety: part("safety", saf),
      unavailable,
    }, 200);
  });

  guard(inventoryRoute);
  app.openapi(inventoryRoute, async (c) => {
    const r = await bus.request(carousel.inventory, {}, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  return app;
}
