/**
 * A machine's configuration: what it sells and how. The cloud pushes new
 * versions (seed 000 `new_config`); the machine applies one atomically.
 */
import { z } from "zod";
import { Cents, Pizza } from "./entities.ts";

/** A machine's configuration. */
export const MachineConfig = z.object({
  version: z.string().min(1).max(40),
  menu: z.array(Pizza).min(1).max(50),
  /** Bills and coins the cash acceptor takes. */
  acceptedCents: z.array(Cents.min(1)).min(1),
  /** Number of storage slots in the carousel. */
  storageSlots: z.number().int().positive().max(200),
  /** Pickup compartments: READY pizzas plus the one cooking may not exceed this. */
  pickupBays: z.number().int().positive().max(8),
  /** Offset of the machine's local time from UTC, for peak hours (§6.3). */
  utcOffsetMin: z.number().int().min(-720).max(840),
  /** Quantity under which a pizza counts as low stock. */
  lowStockThreshold: z.number().int().nonnegative(),
});
/** A machine's configuration. */
export type MachineConfig = z.infer<typeof MachineConfig>;
