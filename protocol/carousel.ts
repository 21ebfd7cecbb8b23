/** The refrigerated carousel's subjects: stock, retrieval, food safety (seed 003 §3.4, §6.7). */
import { z } from "zod";
import { defineCommand, defineEvent, OrderId } from "./define.ts";
import { InventoryItem } from "./entities.ts";
import { IdempotencyKey } from "./idempotency.ts";

/** Why a pizza left storage without being sold. */
export const DiscardReason = z.enum(["EXPIRED", "TIME_TEMPERATURE", "ABANDONED", "FAILED_ORDER"]);

/** The carousel's stock and food-safety state. */
export const Inventory = z.object({
  items: z.array(InventoryItem),
  /** Sellable pizzas per pizzaId, reservations already deducted. */
  available: z.record(z.string(), z.number().int().nonnegative()),
  reservations: z.array(z.object({ orderId: OrderId, pizzaId: z.string() })),
  storageTempC: z.number(),
  salesStopped: z.boolean(),
  stopReason: z.string().nullable(),
});
/** The carousel's stock and food-safety state. */
export type Inventory = z.infer<typeof Inventory>;

/** Progress of a long operation that a repeated command only reports on. */
export const OpStatus = z.enum(["RUNNING", "DONE"]);

/**
 * Holds one sellable pizza of `pizzaId` for `orderId`; idempotent per order.
 * CONFLICT when sold out or sales are stopped.
 */
export const reserve = defineCommand("carousel", "reserve", {
  orderId: OrderId,
  pizzaId: z.string().min(1),
}, z.object({ pizzaId: z.string(), available: z.number().int() }));

/** Releases the reservation of `orderId` (order cancelled before retrieval); idempotent. */
export const release = defineCommand(
  "carousel",
  "release",
  { orderId: OrderId },
  z.object({ released: z.boolean() }),
);

/**
 * Retrieves the reserved pizza of `orderId`: the sellable one that expires
 * first. The first call starts it; repeats report RUNNING or DONE. NOT_FOUND
 * without a reservation; CONFLICT when no sellable pizza is left.
 */
export const retrieve = defineCommand(
  "carousel",
  "retrieve",
  { orderId: OrderId },
  z.object({
    status: OpStatus,
    itemId: z.string(),
    pizzaId: z.string(),
    storageSlot: z.number().int(),
    expiresAt: z.number().int(),
  }),
);

/** One restock line (seed §4.4): `expiresAt` in epoch ms. */
export const RestockLine = z.object({
  pizzaId: z.string().min(1),
  quantity: z.number().int().positive().max(100),
  storageSlot: z.number().int().nonnegative(),
  expiresAt: z.number().int().positive(),
});

/**
 * Loads pizzas; opens the 30-minute post-restock grace for storage temperature.
 * With an `idempotencyKey` (one per loading), a retry whose reply was lost
 * loads nothing more and gets the stock as it is.
 */
export const restock = defineCommand("carousel", "restock", {
  items: z.array(RestockLine).min(1).max(100),
  performedBy: z.string().min(1).max(100),
  idempotencyKey: IdempotencyKey.optional(),
}, Inventory);

/** A technician serviced storage: sales may resume once it holds 5 °C. */
export const service = defineCommand("carousel", "service", {
  performedBy: z.string().min(1).max(100),
  note: z.string().max(500),
}, Inventory);

/** Reports stock and food-safety state. */
export const inventory = defineCommand("carousel", "inventory", {}, Inventory);

/** Stock changed. */
export const changed = defineEvent("carousel", "changed", { inventory: Inventory });

/** A pizza was handed to the arm for `orderId`. */
export const retrieved = defineEvent("carousel", "retrieved", {
  orderId: OrderId,
  itemId: z.string(),
  pizzaId: z.string(),
  storageSlot: z.number().int(),
});

/** The food-safety log (HACCP, §6.7): one entry per discarded pizza. */
export const discarded = defineEvent("carousel", "discarded", {
  itemId: z.string(),
  pizzaId: z.string(),
  storageSlot: z.number().int(),
  reason: DiscardReason,
  /** Time this pizza spent above 5 °C since restock. */
  aboveLimitMs: z.number().int().nonnegative(),
  storageTempC: z.number(),
});

/** Storage temperature: a reading (taken every 10 s) that changed, and every 60 s regardless. */
export const temperature = defineEvent("carousel", "temperature", {
  storageTempC: z.number(),
  salesStopped: z.boolean(),
});

/** Sales stopped or resumed by storage temperature. */
export const sales = defineEvent("carousel", "sales", {
  stopped: z.boolean(),
  reason: z.string().nullable(),
});
