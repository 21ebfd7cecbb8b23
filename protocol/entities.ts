/**
 * The seed's entities (003 §3) as zod schemas. Money is integer cents,
 * temperatures °C, durations ms, instants epoch ms of the machine's clock.
 */
import { z } from "zod";
import { MachineId, OrderId } from "./define.ts";

/** Integer cents, never negative. */
export const Cents = z.number().int().nonnegative().max(10_000_000);

/** Pizza sizes. */
export const PizzaSize = z.enum(["SMALL", "MEDIUM", "LARGE"]);

/** A pizza on the menu (§3.2); `cookingTimeMs` replaces the seed's seconds. */
export const Pizza = z.object({
  pizzaId: z.string().min(1).max(64),
  name: z.string().min(1).max(100),
  description: z.string().max(500),
  size: PizzaSize,
  toppings: z.array(z.string().max(50)).max(30),
  priceCents: Cents,
  calories: z.number().int().nonnegative(),
  allergens: z.array(z.string().max(50)).max(30),
  imageUrl: z.string().max(500),
  cookingTimeMs: z.number().int().positive(),
  /** Oven temperature this pizza bakes at. */
  cookingTempC: z.number().min(100).max(280),
});
/** A pizza on the menu. */
export type Pizza = z.infer<typeof Pizza>;

/** Order statuses of §3.3, plus PAYMENT_PENDING of §6.4. */
export const OrderStatus = z.enum([
  "PENDING",
  "PAYMENT_PROCESSING",
  "PAYMENT_PENDING",
  "PAID",
  "PREPARING",
  "READY",
  "DISPENSED",
  "CANCELLED",
  "REFUNDED",
]);
/** Order status. */
export type OrderStatus = z.infer<typeof OrderStatus>;

/** Payment methods. */
export const PaymentMethod = z.enum(["CARD", "MOBILE_PAY", "CASH"]);
/** Payment method. */
export type PaymentMethod = z.infer<typeof PaymentMethod>;

/** A customer's order (§3.3). */
export const Order = z.object({
  orderId: OrderId,
  machineId: MachineId,
  pizzaId: z.string(),
  status: OrderStatus,
  customerEmail: z.email().optional(),
  totalAmountCents: Cents,
  paymentMethod: PaymentMethod.optional(),
  paymentTransactionId: z.string().optional(),
  placedAt: z.number().int(),
  readyAt: z.number().int().nullable(),
  dispensedAt: z.number().int().nullable(),
  pickupCode: z.string().regex(/^\d{4}$/),
  /** Why the order ended CANCELLED or REFUNDED. */
  reason: z.string().optional(),
});
/** A customer's order. */
export type Order = z.infer<typeof Order>;

/**
 * Payment statuses: the seed's PENDING/COMPLETED/FAILED/REFUNDED plus the
 * pre-authorization steps (AUTHORIZED until the pizza is taken, then COMPLETED;
 * VOIDED when an authorization or cash escrow is released without charge).
 */
export const PaymentStatus = z.enum([
  "PENDING",
  "AUTHORIZED",
  "COMPLETED",
  "FAILED",
  "VOIDED",
  "REFUNDED",
]);
/** Payment status. */
export type PaymentStatus = z.infer<typeof PaymentStatus>;

/** A payment (§3.5); never holds a card number, at most its last four digits. */
export const Payment = z.object({
  paymentId: z.string(),
  orderId: OrderId,
  amountCents: Cents,
  method: PaymentMethod,
  status: PaymentStatus,
  transactionId: z.string().nullable(),
  last4: z.string().regex(/^\d{4}$/).nullable(),
  /** Cash only: what was inserted so far and what was given back as change. */
  insertedCents: Cents,
  changeCents: Cents,
  gatewayResponse: z.record(z.string(), z.unknown()).nullable(),
  processedAt: z.number().int().nullable(),
});
/** A payment. */
export type Payment = z.infer<typeof Payment>;

/** One storage slot's content (§3.4). */
export const InventoryItem = z.object({
  itemId: z.string(),
  machineId: MachineId,
  pizzaId: z.string(),
  quantity: z.number().int().nonnegative(),
  storageSlot: z.number().int().nonnegative(),
  /** Epoch ms after which the pizza must not be sold. */
  expiresAt: z.number().int(),
  addedAt: z.number().int(),
});
/** One storage slot's content. */
export type InventoryItem = z.infer<typeof InventoryItem>;

/** Cooking session statuses (§3.8). */
export const CookingStatus = z.enum(["HEATING", "COOKING", "COMPLETE", "ERROR"]);

/** A cooking session (§3.8). */
export const CookingSession = z.object({
  sessionId: z.string(),
  orderId: OrderId,
  machineId: MachineId,
  startTemperatureC: z.number(),
  targetTemperatureC: z.number(),
  currentTemperatureC: z.number(),
  estimatedCompletion: z.number().int(),
  /** Baking time still owed, in ms. */
  timeRemainingMs: z.number().int().nonnegative(),
  status: CookingStatus,
  startedAt: z.number().int(),
  completedAt: z.number().int().nullable(),
});
/** A cooking session. */
export type CookingSession = z.infer<typeof CookingSession>;

/** Alert types (§3.7) plus the machine-level ones we raise. */
export const AlertType = z.enum([
  "LOW_INVENTORY",
  "EQUIPMENT_FAILURE",
  "TEMPERATURE_ISSUE",
  "PAYMENT_ISSUE",
  "FOOD_SAFETY",
  "SAFETY_TRIP",
  "PICKUP_LOCKED",
  "PIZZA_ABANDONED",
  "ORDER_ABORTED",
]);
/** Alert severities. */
export const AlertSeverity = z.enum(["INFO", "WARNING", "CRITICAL"]);

/** An alert (§3.7). */
export const Alert = z.object({
  alertId: z.string(),
  machineId: MachineId,
  type: AlertType,
  severity: AlertSeverity,
  message: z.string(),
  resolved: z.boolean(),
  createdAt: z.number().int(),
  resolvedAt: z.number().int().nullable(),
  orderId: OrderId.optional(),
});
/** An alert. */
export type Alert = z.infer<typeof Alert>;

/** Machine statuses (§3.1); DEGRADED is cash-only service. */
export const MachineStatus = z.enum(["OPERATIONAL", "DEGRADED", "MAINTENANCE", "ERROR", "OFFLINE"]);
/** Machine status. */
export type MachineStatus = z.infer<typeof MachineStatus>;

/** A machine (§3.1). */
export const Machine = z.object({
  machineId: MachineId,
  location: z.object({ address: z.string(), latitude: z.number(), longitude: z.number() }),
  status: MachineStatus,
  temperature: z.object({
    storageC: z.number(),
    ovenC: z.number(),
    ambientC: z.number(),
  }),
  inventory: z.array(InventoryItem),
  lastMaintenance: z.number().int().nullable(),
  softwareVersion: z.string(),
});
/** A machine. */
export type Machine = z.infer<typeof Machine>;
