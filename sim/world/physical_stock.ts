/**
 * The pizzas really in the carousel, as the world knows them: what was loaded
 * with its expiry, what the ejector pushed out, what a technician took away.
 * The controller's journal is its belief; this is the truth it is checked by.
 */

/** One physical pizza. */
export interface PhysicalPizza {
  /** The world's own number for it. */
  id: number;
  pizzaId: string;
  slot: number;
  expiresAt: number;
}

/** The carousel's content, slot by slot. */
export class PhysicalStock {
  private readonly slots = new Map<number, PhysicalPizza[]>();
  private nextId = 1;
  /** The pizza the ejector pushed out last, until an order claims it. */
  tray: PhysicalPizza | null = null;
  loaded = 0;
  ejected = 0;
  removed = 0;

  /** Loads `quantity` pizzas into `slot`. */
  load(pizzaId: string, slot: number, quantity: number, expiresAt: number): void {
    const list = this.slots.get(slot) ?? [];
    for (let i = 0; i < quantity; i++) {
      list.push({ id: this.nextId++, pizzaId, slot, expiresAt });
    }
    list.sort((a, b) => a.expiresAt - b.expiresAt || a.id - b.id);
    this.slots.set(slot, list);
    this.loaded += quantity;
  }

  /**
   * The ejector pushed one pizza out of `slot`: the one nearest the hatch, which
   * we take to be the one that expires first. Null when the slot was empty.
   */
  eject(slot: number): PhysicalPizza | null {
    const pizza = this.slots.get(slot)?.shift() ?? null;
    if (pizza) this.ejected++;
    this.tray = pizza;
    return pizza;
  }

  /** Pizzas in `slot`. */
  count(slot: number): number {
    return this.slots.get(slot)?.length ?? 0;
  }

  /** Pizzas in storage. */
  total(): number {
    let n = 0;
    for (const list of this.slots.values()) n += list.length;
    return n;
  }

  /** Pizzas the controller discarded that still sit in their slot, by slot. */
  private readonly discardedIn = new Map<number, number>();

  /** The controller discarded a pizza that is still in `slot` (it stays until staff come). */
  discarded(slot: number): void {
    this.discardedIn.set(slot, (this.discardedIn.get(slot) ?? 0) + 1);
  }

  /** Staff take every discarded pizza out, the earliest-expiring of each slot first. */
  removeDiscarded(): number {
    let n = 0;
    for (const [slot, count] of this.discardedIn) {
      const list = this.slots.get(slot) ?? [];
      const k = Math.min(count, list.length);
      list.splice(0, k);
      n += k;
    }
    this.discardedIn.clear();
    this.removed += n;
    return n;
  }
}
