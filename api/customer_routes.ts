/**
 * The customer's routes (seed 003 §4.1), no auth: menu, order, pay, status,
 * pickup, cancel. Each one is a thin mapping onto one `order.*` command.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import * as order from "../protocol/order.ts";
import { PaymentMethod, PaymentStatus } from "../protocol/entities.ts";
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
  OrderParams,
  ourMachine,
  payTimeoutMs,
  routeDeclarer,
} from "./context.ts";
import { failedResponse } from "./errors.ts";

/** A menu line as the kiosk sees it: the protocol's plus `cookingTime` in seconds (seed §4.1). */
export const MenuLine = order.MenuItem.extend({ cookingTime: z.number().int().nonnegative() });

/** Body of `POST /api/v1/machine/{machineId}/order`. */
export const CreateOrderBody = fieldsOf(order.create, ["pizzaId", "customerEmail"]);

/** Body of `POST /api/v1/order/{orderId}/payment`. */
export const PayBody = fieldsOf(order.pay, ["method", "paymentDetails"]);

/** Body of `POST /api/v1/order/{orderId}/pickup`. */
export const PickupBody = fieldsOf(order.pickup, ["pickupCode"]);

/** Body of `POST /api/v1/order/{orderId}/cancel`: the reason is optional for a customer. */
export const CustomerCancelBody = z.object({
  reason: z.string().min(1).max(200).optional(),
});

const CreatedOrder = z.object({
  orderId: z.uuid(),
  totalAmountCents: z.number().int(),
  /** Seconds until the pizza should be ready, as the seed has it. */
  estimatedTime: z.number().int().nonnegative(),
  pickupCode: z.string(),
});

const PaymentResult = z.object({
  paymentId: z.string(),
  status: PaymentStatus,
  method: PaymentMethod,
  amountCents: z.number().int(),
  last4: z.string().nullable(),
  receiptUrl: z.string().optional(),
  /** Cash only: inserted so far, and change paid out. */
  insertedCents: z.number().int().optional(),
  changeCents: z.number().int().optional(),
});

const OrderStatusView = z.object({
  orderId: z.uuid(),
  status: order.OrderView.shape.status,
  pizzaId: z.string(),
  totalAmountCents: z.number().int(),
  /** Epoch ms the pizza should be ready at, when known. */
  estimatedReadyTime: z.number().int().nullable(),
  pickupCode: z.string(),
  queuePosition: z.number().int().nullable(),
  placedAt: z.number().int(),
  readyAt: z.number().int().nullable(),
  dispensedAt: z.number().int().nullable(),
  pickupLocked: z.boolean(),
  reason: z.string().nullable(),
  payment: z.object({
    paymentId: z.string(),
    status: PaymentStatus,
    method: PaymentMethod,
    amountCents: z.number().int(),
    insertedCents: z.number().int(),
    changeCents: z.number().int(),
  }).nullable(),
});

const PickupResult = z.object({
  success: z.boolean(),
  message: z.string(),
  attemptsLeft: z.number().int(),
});

const CancelResult = z.object({
  success: z.boolean(),
  refundInitiated: z.boolean(),
  status: order.OrderView.shape.status,
});

const customerRoute = routeDeclarer("customer");

const menuRoute = customerRoute({
  method: "get",
  path: "/api/v1/machine/{machineId}/menu",
  summary: "The menu, with what can be bought now",
  request: { params: MachineParams },
  responses: {
    200: jsonResponse(z.object({ pizzas: z.array(MenuLine) }), "The menu"),
  },
});

const createOrderRoute = customerRoute({
  method: "post",
  path: "/api/v1/machine/{machineId}/order",
  summary: "Places an order and reserves its pizza",
  request: { params: MachineParams, headers: IdempotencyHeaders, body: jsonBody(CreateOrderBody) },
  responses: { 201: jsonResponse(CreatedOrder, "The order, awaiting payment") },
});

const payRoute = customerRoute({
  method: "post",
  path: "/api/v1/order/{orderId}/payment",
  summary: "Pays by card or wallet token, or inserts one bill or coin",
  request: { params: OrderParams, headers: IdempotencyHeaders, body: jsonBody(PayBody) },
  responses: { 200: jsonResponse(PaymentResult, "The payment's outcome") },
});

const statusRoute = customerRoute({
  method: "get",
  path: "/api/v1/order/{orderId}/status",
  summary: "The order's status and place in the queue",
  request: { params: OrderParams },
  responses: { 200: jsonResponse(OrderStatusView, "The order") },
});

const pickupRoute = customerRoute({
  method: "post",
  path: "/api/v1/order/{orderId}/pickup",
  summary: "Checks the pickup code and opens the door",
  request: { params: OrderParams, body: jsonBody(PickupBody) },
  responses: { 200: jsonResponse(PickupResult, "Whether the door opens") },
});

const cancelRoute = customerRoute({
  method: "post",
  path: "/api/v1/order/{orderId}/cancel",
  summary: "Cancels the order before cooking starts, refunding what was paid",
  request: { params: OrderParams, body: jsonBody(CustomerCancelBody, false) },
  responses: { 200: jsonResponse(CancelResult, "The order was cancelled") },
});

/** The customer's routes. */
export function customerRoutes(deps: ApiDeps): OpenAPIHono {
  const { bus } = deps;
  const app = createSubApp(deps.log);
  const onlyOurs = ourMachine(deps.machineId);
  const timeout = { timeoutMs: commandTimeoutMs };

  app.use(menuRoute.getRoutingPath(), onlyOurs);
  app.openapi(menuRoute, async (c) => {
    const r = await bus.request(order.menu, {}, timeout);
    if (!r.ok) return failedResponse(c, r);
    const pizzas = r.value.pizzas.map((p) => ({
      ...p,
      cookingTime: Math.ceil(p.cookingTimeMs / 1000),
    }));
    return c.json({ pizzas }, 200);
  });

  app.use(createOrderRoute.getRoutingPath(), onlyOurs);
  app.openapi(createOrderRoute, async (c) => {
    const { pizzaId, customerEmail } = c.req.valid("json");
    const r = await bus.request(
      order.create,
      {
        pizzaId,
        ...(customerEmail === undefined ? {} : { customerEmail }),
        ...keyOf(c.req.valid("header")),
      },
      timeout,
    );
    if (!r.ok) return failedResponse(c, r);
    const { orderId, totalAmountCents, estimatedTimeMs, pickupCode } = r.value;
    return c.json({
      orderId,
      totalAmountCents,
      estimatedTime: Math.ceil(estimatedTimeMs / 1000),
      pickupCode,
    }, 201);
  });

  app.openapi(payRoute, async (c) => {
    const { orderId } = c.req.valid("param");
    const { method, paymentDetails } = c.req.valid("json");
    const r = await bus.request(
      order.pay,
      { orderId, method, paymentDetails, ...keyOf(c.req.valid("header")) },
      { timeoutMs: payTimeoutMs },
    );
    if (!r.ok) return failedResponse(c, r);
    const p = r.value;
    return c.json({
      paymentId: p.paymentId,
      status: p.status,
      method: p.method,
      amountCents: p.amountCents,
      last4: p.last4,
      ...(p.method === "CASH"
        ? { insertedCents: p.insertedCents, changeCents: p.changeCents }
        : {}),
    }, 200);
  });

  app.openapi(statusRoute, async (c) => {
    const { orderId } = c.req.valid("param");
    const r = await bus.request(order.get, { orderId }, timeout);
    if (!r.ok) return failedResponse(c, r);
    const o = r.value;
    return c.json({
      orderId: o.orderId,
      status: o.status,
      pizzaId: o.pizzaId,
      totalAmountCents: o.totalAmountCents,
      estimatedReadyTime: o.estimatedReadyAt,
      pickupCode: o.pickupCode,
      queuePosition: o.queuePosition,
      placedAt: o.placedAt,
      readyAt: o.readyAt,
      dispensedAt: o.dispensedAt,
      pickupLocked: o.pickupLocked,
      reason: o.reason ?? null,
      payment: o.payment && {
        paymentId: o.payment.paymentId,
        status: o.payment.status,
        method: o.payment.method,
        amountCents: o.payment.amountCents,
        insertedCents: o.payment.insertedCents,
        changeCents: o.payment.changeCents,
      },
    }, 200);
  });

  app.openapi(pickupRoute, async (c) => {
    const { orderId } = c.req.valid("param");
    const { pickupCode } = c.req.valid("json");
    const r = await bus.request(order.pickup, { orderId, pickupCode }, timeout);
    if (!r.ok) return failedResponse(c, r);
    return c.json(r.value, 200);
  });

  app.openapi(cancelRoute, async (c) => {
    const { orderId } = c.req.valid("param");
    const { reason } = c.req.valid("json");
    const r = await bus.request(order.cancel, {
      orderId,
      reason: reason ?? "Cancelled by the customer",
      by: "CUSTOMER",
    }, timeout);
    if (!r.ok) return failedResponse(c, r);
    const { success, refundInitiated } = r.value;
    return c.json({ success, refundInitiated, status: r.value.order.status }, 200);
  });

  return app;
}
