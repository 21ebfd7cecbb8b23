/**
 * Checks a restock before anything is written: every line must name a menu
 * pizza, a slot that exists and an expiry still ahead; a slot holds one pizza
 * type and at most `slotCapacity` pizzas. All or nothing.
 */
import { fail, ok, type Result } from "../../protocol/define.ts";
import type { z } from "zod";
import type { RestockLine } from "../../protocol/carousel.ts";

/** What a slot holds now. */
export interface SlotContent {
  pizzaId: string;
  quantity: number;
}

/** The limits a restock is checked against. */
export interface RestockRules {
  menuPizzaIds: ReadonlySet<string>;
  storageSlots: number;
  slotCapacity: number;
  nowMs: number;
}

/**
 * Ok when every line of `lines` fits `occupancy` under `rules`; otherwise
 * BAD_REQUEST (a line is wrong on its own) or CONFLICT (it clashes with the
 * slot's content), naming the line and its values.
 */
export function checkRestock(
  lines: readonly z.infer<typeof RestockLine>[],
  occupancy: ReadonlyMap<number, SlotContent>,
  rules: RestockRules,
): Result<void> {
  const planned = new Map<number, SlotContent>(
    [...occupancy].map(([slot, c]) => [slot, { ...c }]),
  );
  for (const [i, line] of lines.entries()) {
    const where = `items.${i}`;
    if (!rules.menuPizzaIds.has(line.pizzaId)) {
      return fail("BAD_REQUEST", `${where}: pizza "${line.pizzaId}" is not on the menu`);
    }
    if (line.storageSlot >= rules.storageSlots) {
      return fail(
        "BAD_REQUEST",
        `${where}: slot ${line.storageSlot} does not exist (the carousel has slots 0-${
          rules.storageSlots - 1
        })`,
      );
    }
    if (line.expiresAt <= rules.nowMs) {
      return fail(
        "BAD_REQUEST",
        `${where}: "${line.pizzaId}" already expired (expiresAt ${line.expiresAt} <= now ${rules.nowMs})`,
      );
    }
    const content = planned.get(line.storageSlot);
    if (content && content.quantity > 0 && content.pizzaId !== line.pizzaId) {
      return fail(
        "CONFLICT",
        `${where}: slot ${line.storageSlot} holds "${content.pizzaId}", not "${line.pizzaId}"`,
      );
    }
    const total = (content?.quantity ?? 0) + line.quantity;
    if (total > rules.slotCapacity) {
      return fail(
        "CONFLICT",
        `${where}: slot ${line.storageSlot} would hold ${total} pizzas, more than its capacity of ${rules.slotCapacity}`,
      );
    }
    planned.set(line.storageSlot, { pizzaId: line.pizzaId, quantity: total });
  }
  return ok(undefined);
}
