/**
 * Food-safety rules of the refrigerated storage, as pure functions: the 5 °C
 * cold-holding limit (US Food Code 3-501.16), each pizza's cumulative time
 * above it (seed 003 §6.7, 120 min), expiry, and when sales must stop.
 */
import type { z } from "zod";
import type { DiscardReason } from "../../protocol/carousel.ts";

/** Cold holding: storage must keep pizzas at this temperature or below. */
export const COLD_LIMIT_C = 5;
/** Most time a pizza may spend above the limit, summed since restock (§6.7). */
export const MAX_ABOVE_LIMIT_MS = 120 * 60_000;
/** After a restock the open door may warm storage this long before sales stop. */
export const RESTOCK_GRACE_MS = 30 * 60_000;
/** Outside the grace, storage may be above the limit this long before sales stop. */
export const WARM_DEBOUNCE_MS = 2 * 60_000;
/**
 * A pizza is offered and picked only if it stays in date this much longer: a
 * retrieval (rotation, ejection, a retry) ends well within it, so no pizza
 * expires on its way out of storage.
 */
export const SALE_MARGIN_MS = 5 * 60_000;

/** One reading of the storage probe; `tempC` null when the probe could not be read. */
export interface TempSample {
  atMs: number;
  tempC: number | null;
}

/** Whether a reading fails cold holding; an unreadable probe counts as failing. */
export function isAboveLimit(tempC: number | null): boolean {
  return tempC === null || tempC > COLD_LIMIT_C;
}

/**
 * Whether the time between two readings counts as above the limit: it does
 * when either end was above, since nobody saw when storage crossed it.
 */
export function intervalAboveLimit(prev: TempSample | null, next: TempSample): boolean {
  return prev !== null && (isAboveLimit(prev.tempC) || isAboveLimit(next.tempC));
}

/** The parts of a stored item the rules look at. */
export interface HeldItem {
  expiresAt: number;
  addedAt: number;
  aboveLimitMs: number;
}

/**
 * Time above the limit of `item` not yet recorded: from the last reading (or
 * the item's restock, if later) to `nowMs`, when the last reading was above.
 */
export function pendingAboveLimitMs(
  item: HeldItem,
  last: TempSample | null,
  nowMs: number,
): number {
  if (!last || !isAboveLimit(last.tempC)) return 0;
  return Math.max(0, nowMs - Math.max(last.atMs, item.addedAt));
}

/** Why `item` must be discarded at `nowMs`, or null while it may be sold. */
export function discardReason(
  item: HeldItem,
  last: TempSample | null,
  nowMs: number,
): z.infer<typeof DiscardReason> | null {
  if (item.expiresAt <= nowMs) return "EXPIRED";
  if (item.aboveLimitMs + pendingAboveLimitMs(item, last, nowMs) > MAX_ABOVE_LIMIT_MS) {
    return "TIME_TEMPERATURE";
  }
  return null;
}

/**
 * Whether storage above the limit since `highSinceMs` must stop sales at
 * `nowMs`: after the debounce, and never inside a restock's grace.
 */
export function salesLimitPassed(
  highSinceMs: number,
  graceUntilMs: number,
  nowMs: number,
  debounceMs = WARM_DEBOUNCE_MS,
): boolean {
  return nowMs > Math.max(highSinceMs + debounceMs, graceUntilMs);
}

/** One line naming why storage fails cold holding, for alerts and refusals. */
export function describeWarmStorage(
  tempC: number | null,
  highSinceMs: number,
  nowMs: number,
): string {
  const minutes = Math.round((nowMs - highSinceMs) / 60_000);
  return tempC === null
    ? `storage temperature unreadable for ${minutes} min`
    : `storage at ${tempC.toFixed(1)} °C, above ${COLD_LIMIT_C} °C for ${minutes} min`;
}
