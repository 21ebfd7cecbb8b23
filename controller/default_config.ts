/** The configuration a new machine starts with, until the cloud pushes another. */
import type { MachineConfig } from "../protocol/config.ts";
import type { RestockLine } from "../protocol/carousel.ts";
import type { z } from "zod";

const bake = { cookingTimeMs: 240_000, cookingTempC: 220 } as const;

/** Four pizzas, cash in common bills and coins, one pickup bay. */
export const defaultConfig: MachineConfig = {
  version: "v1",
  menu: [
    {
      pizzaId: "margherita",
      name: "Margherita",
      description: "Tomato, mozzarella, basil",
      size: "MEDIUM",
      toppings: ["tomato", "mozzarella", "basil"],
      priceCents: 750,
      calories: 850,
      allergens: ["gluten", "milk"],
      imageUrl: "/img/margherita.png",
      ...bake,
    },
    {
      pizzaId: "pepperoni",
      name: "Pepperoni",
      description: "Tomato, mozzarella, pepperoni",
      size: "MEDIUM",
      toppings: ["tomato", "mozzarella", "pepperoni"],
      priceCents: 900,
      calories: 1050,
      allergens: ["gluten", "milk"],
      imageUrl: "/img/pepperoni.png",
      ...bake,
    },
    {
      pizzaId: "veggie",
      name: "Veggie",
      description: "Tomato, mozzarella, peppers, mushrooms, olives",
      size: "MEDIUM",
      toppings: ["tomato", "mozzarella", "peppers", "mushrooms", "olives"],
      priceCents: 850,
      calories: 900,
      allergens: ["gluten", "milk"],
      imageUrl: "/img/veggie.png",
      ...bake,
    },
    {
      pizzaId: "quattro-formaggi",
      name: "Quattro Formaggi",
      description: "Mozzarella, gorgonzola, parmesan, fontina",
      size: "LARGE",
      toppings: ["mozzarella", "gorgonzola", "parmesan", "fontina"],
      priceCents: 1150,
      calories: 1300,
      allergens: ["gluten", "milk"],
      imageUrl: "/img/quattro-formaggi.png",
      cookingTimeMs: 270_000,
      cookingTempC: 230,
    },
  ],
  acceptedCents: [100, 200, 500, 1000, 2000],
  storageSlots: 48,
  pickupBays: 1,
  utcOffsetMin: 0,
  lowStockThreshold: 3,
};

/**
 * A full carousel for `config`: every slot loaded round-robin with the menu,
 * one pizza per slot, expiring `shelfLifeMs` after `now`.
 */
export function fullStock(
  config: MachineConfig,
  now: number,
  shelfLifeMs = 5 * 24 * 3_600_000,
): z.infer<typeof RestockLine>[] {
  return Array.from({ length: config.storageSlots }, (_, slot) => ({
    pizzaId: config.menu[slot % config.menu.length]!.pizzaId,
    quantity: 1,
    storageSlot: slot,
    expiresAt: now + shelfLifeMs,
  }));
}
