/**
 * Orders as the kiosk and the technician see them (seed 003 §4.1, §4.2, §6.5).
 * The HTTP API is a thin mapping onto these commands.
 */
import { z } from "zod";
import {
  type CommandReply,
  type CommandRequest,
  defineCommand,
  defineEvent,
  OrderId,
} from "./define.ts";
import { Cents, Order, Payment, Pizza } from "./entities.ts";
import { IdempotencyKey } from "./idempotency.ts";
import { PaymentToken } from "./payment.ts";

/** A menu line: the pizza and whether it can be bought now. */
export const MenuItem = Pizza.extend({ available: z.boolean() });

/** The menu. */
export const menu = defineCommand("order", "menu", {}, z.object({ pizzas: z.array(MenuItem) }));

/**
 * Places an order and reserves its pizza. CONFLICT when sold out, in
 * maintenance, or out of service; NOT_FOUND for an unknown pizza. With an
 * `idempotencyKey`, a retry gets the order the first request made.
 */
export const create = defineCommand(
  "order",
  "create",
  {
    pizzaId: z.string().min(1).max(64),
    customerEmail: z.email().optional(),
    idempotencyKey: IdempotencyKey.optional(),
  },
  z.object({
    orderId: OrderId,
    totalAmountCents: Cents,
    estimatedTimeMs: z.number().int().nonnegative(),
    pickupCode: z.string(),
  }),
);

/** The reply to `create`: the order awaiting payment. */
export type CreatedOrder = CommandReply<typeof create>;

/** Payment details: a token for card and wallet, one bill or coin for cash. */
export const PaymentDetails = z.union([
  z.object({ token: PaymentToken }).strict(),
  z.object({ denominationCents: Cents.min(1) }).strict(),
]);

/**
 * Pays (or inserts one bill into) an order. CONFLICT when already paid or not
 * payable. With an `idempotencyKey` (one per payment attempt, one per bill), a
 * retry gets the first result and a bill counts once.
 */
export const pay = defineCommand("order", "pay", {
  orderId: OrderId,
  method: Payment.shape.method,
  paymentDetails: PaymentDetails,
  idempotencyKey: IdempotencyKey.optional(),
}, Payment);
/** A request to pay. */
export type PayRequest = CommandRequest<typeof pay>;

/** An order with its place in the queue. */
export const OrderView = Order.extend({
  queuePosition: z.number().int().nullable(),
  estimatedReadyAt: z.number().int().nullable(),
  pickupLocked: z.boolean(),
  payment: Payment.nullable(),
});
/** An order with its place in the queue. */
export type OrderView = z.infer<typeof OrderView>;

/** The order of `orderId`; NOT_FOUND when unknown. */
export const get = defineCommand("order", "get", { orderId: OrderId }, OrderView);

/** Active orders (not DISPENSED, CANCELLED or REFUNDED). */
export const list = defineCommand("order", "list", {}, z.object({ orders: z.array(OrderView) }));

/**
 * Verifies the pickup code and opens the door. A wrong code counts; the fifth
 * locks pickup. CONFLICT before READY or when locked.
 */
export const pickup = defineCommand("order", "pickup", {
  orderId: OrderId,
  pickupCode: z.string().max(16),
}, z.object({ success: z.boolean(), message: z.string(), attemptsLeft: z.number().int() }));

/**
 * Cancels an order and refunds what was paid. A customer may cancel until
 * cooking starts; a technician (or the supervisor aborting on a fault) any time
 * before DISPENSED.
 */
export const cancel = defineCommand("order", "cancel", {
  orderId: OrderId,
  reason: z.string().min(1).max(200),
  by: z.enum(["CUSTOMER", "TECHNICIAN", "SUPERVISOR"]),
}, z.object({ success: z.boolean(), refundInitiated: z.boolean(), order: OrderView }));

/** A technician hands a READY pizza out without its code (seed §4.2 dispense). */
export const dispense = defineCommand(
  "order",
  "dispense",
  { orderId: OrderId },
  z.object({
    success: z.boolean(),
    message: z.string(),
  }),
);

/** An order changed status. */
export const updated = defineEvent("order", "updated", { order: OrderView });

/** The queue of paid orders waiting for or in preparation. */
export const queue = defineEvent("order", "queue", {
  length: z.number().int().nonnegative(),
  orderIds: z.array(OrderId),
});
