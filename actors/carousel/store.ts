/**
 * The carousel's durable record in the machine journal: stock (one row per
 * restocked batch, with its time-temperature record), reservations, the
 * food-safety log, the maintenance log and the food-safety latch. The
 * journal is the truth: the stock and reservation lists are cached only until
 * this store's next write (the carousel actor is the only writer of its
 * tables, even when other processes share the journal), and never read from
 * the cache inside a transaction.
 */
import { type Journal, migrate } from "../../journal/journal.ts";
import type { z } from "zod";
import type { DiscardReason } from "../../protocol/carousel.ts";

/** A restocked batch of one pizza type in one slot. */
export interface StoredItem {
  itemId: string;
  pizzaId: string;
  storageSlot: number;
  quantity: number;
  expiresAt: number;
  addedAt: number;
  /** Time this batch spent above 5 °C since restock, as recorded so far. */
  aboveLimitMs: number;
}

/** Where a reservation stands. */
export type ReservationStatus = "RESERVED" | "RETRIEVING" | "DONE" | "FAILED";

/** A pizza held for an order; RETRIEVING and later name the pizza taken. */
export interface Reservation {
  orderId: string;
  pizzaId: string;
  status: ReservationStatus;
  reservedAt: number;
  updatedAt: number;
  itemId: string | null;
  storageSlot: number | null;
  expiresAt: number | null;
  error: string | null;
}

/** One row of the HACCP food-safety log: one discarded pizza. */
export interface FoodSafetyEntry {
  logId: string;
  atMs: number;
  itemId: string;
  pizzaId: string;
  storageSlot: number;
  reason: z.infer<typeof DiscardReason>;
  aboveLimitMs: number;
  storageTempC: number | null;
  expiresAt: number;
}

/** One row of the maintenance log (seed §3.6): restocks and services. */
export interface MaintenanceEntry {
  logId: string;
  atMs: number;
  type: "RESTOCKING" | "REPAIR";
  performedBy: string;
  description: string;
}

const MIGRATIONS = [
  `CREATE TABLE carousel_items (
    item_id TEXT PRIMARY KEY,
    pizza_id TEXT NOT NULL,
    storage_slot INTEGER NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity >= 0),
    expires_at INTEGER NOT NULL,
    added_at INTEGER NOT NULL,
    above_limit_ms INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX carousel_items_pizza ON carousel_items (pizza_id, expires_at);
  CREATE TABLE carousel_reservations (
    order_id TEXT PRIMARY KEY,
    pizza_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('RESERVED', 'RETRIEVING', 'DONE', 'FAILED')),
    reserved_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    item_id TEXT,
    storage_slot INTEGER,
    expires_at INTEGER,
    error TEXT
  );
  CREATE TABLE food_safety_log (
    log_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    pizza_id TEXT NOT NULL,
    storage_slot INTEGER NOT NULL,
    reason TEXT NOT NULL,
    above_limit_ms INTEGER NOT NULL,
    storage_temp_c REAL,
    expires_at INTEGER NOT NULL
  );
  CREATE TABLE carousel_maintenance_log (
    log_id TEXT PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    type TEXT NOT NULL,
    performed_by TEXT NOT NULL,
    description TEXT NOT NULL
  );
  CREATE TABLE carousel_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // A restock's idempotency key, written in the restock's own transaction, so
  // a retry whose reply was lost never loads the pizzas twice.
  `CREATE TABLE carousel_restocks (
    idempotency_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    at_ms INTEGER NOT NULL
  )`,
];

type Row = Record<string, unknown>;

function toItem(r: Row): StoredItem {
  return {
    itemId: String(r.item_id),
    pizzaId: String(r.pizza_id),
    storageSlot: Number(r.storage_slot),
    quantity: Number(r.quantity),
    expiresAt: Number(r.expires_at),
    addedAt: Number(r.added_at),
    aboveLimitMs: Number(r.above_limit_ms),
  };
}

function toReservation(r: Row): Reservation {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    orderId: String(r.order_id),
    pizzaId: String(r.pizza_id),
    status: String(r.status) as ReservationStatus,
    reservedAt: Number(r.reserved_at),
    updatedAt: Number(r.updated_at),
    itemId: r.item_id === null || r.item_id === undefined ? null : String(r.item_id),
    storageSlot: num(r.storage_slot),
    expiresAt: num(r.expires_at),
    error: r.error === null || r.error === undefined ? null : String(r.error),
  };
}

/** Typed access to the carousel's tables; callers group writes in `transaction`. */
export class CarouselStore {
  #writes = 0;
  #cache = new Map<string, { version: number; rows: unknown }>();

  /** Counts writes to batches and reservations, so a reader can tell nothing changed. */
  get version(): number {
    return this.#writes;
  }

  /** Opens the carousel's tables in `db`, creating them on first use. */
  constructor(readonly db: Journal) {
    migrate(db, "carousel", MIGRATIONS);
  }

  /**
   * `read()`, reused while nothing was written since. Every status request and
   * stock event lists the stock, which made these lists a hot path of a
   * simulated day. Inside a transaction the journal answers, as the
   * transaction may yet roll back what it wrote.
   */
  #cached<T>(key: string, read: () => T): T {
    if (this.db.isTransaction) return read();
    const hit = this.#cache.get(key);
    if (hit?.version === this.#writes) return hit.rows as T;
    const rows = read();
    this.#cache.set(key, { version: this.#writes, rows });
    return rows;
  }

  /** Batches still holding pizzas, earliest expiry first. */
  items(): readonly Readonly<StoredItem>[] {
    return this.#cached("items", () =>
      this.db.prepare(
        "SELECT * FROM carousel_items WHERE quantity > 0 ORDER BY expires_at, added_at, storage_slot, item_id",
      ).all().map((r) => toItem(r as Row)));
  }

  /** A batch by id, empty or not. */
  item(itemId: string): StoredItem | undefined {
    const r = this.db.prepare("SELECT * FROM carousel_items WHERE item_id = ?").get(itemId);
    return r ? toItem(r as Row) : undefined;
  }

  /** Adds a batch. */
  insertItem(item: StoredItem): void {
    this.#writes++;
    this.db.prepare(
      `INSERT INTO carousel_items
       (item_id, pizza_id, storage_slot, quantity, expires_at, added_at, above_limit_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      item.itemId,
      item.pizzaId,
      item.storageSlot,
      item.quantity,
      item.expiresAt,
      item.addedAt,
      item.aboveLimitMs,
    );
  }

  /** Sets how many pizzas a batch holds. */
  setQuantity(itemId: string, quantity: number): void {
    this.#writes++;
    this.db.prepare("UPDATE carousel_items SET quantity = ? WHERE item_id = ?").run(
      quantity,
      itemId,
    );
  }

  /** Adds the part of [fromMs, toMs] after each batch's restock to its time above 5 °C. */
  addAboveLimit(fromMs: number, toMs: number): void {
    this.#writes++;
    this.db.prepare(
      `UPDATE carousel_items
       SET above_limit_ms = above_limit_ms + (? - MAX(?, added_at))
       WHERE quantity > 0 AND added_at < ?`,
    ).run(toMs, fromMs, toMs);
  }

  /** Drops empty batches no retrieval still points at. */
  pruneEmptyItems(): void {
    this.#writes++;
    this.db.prepare(
      `DELETE FROM carousel_items WHERE quantity = 0 AND item_id NOT IN
       (SELECT item_id FROM carousel_reservations WHERE status = 'RETRIEVING' AND item_id IS NOT NULL)`,
    ).run();
  }

  /** Every reservation, oldest first. */
  reservations(): readonly Readonly<Reservation>[] {
    return this.#cached(
      "reservations",
      () =>
        this.db.prepare("SELECT * FROM carousel_reservations ORDER BY reserved_at, order_id")
          .all().map((r) => toReservation(r as Row)),
    );
  }

  /** Reservations still holding or taking a pizza (RESERVED, RETRIEVING), oldest first. */
  activeReservations(): readonly Readonly<Reservation>[] {
    return this.#cached("activeReservations", () =>
      this.db.prepare(
        `SELECT * FROM carousel_reservations WHERE status IN ('RESERVED', 'RETRIEVING')
         ORDER BY reserved_at, order_id`,
      ).all().map((r) => toReservation(r as Row)));
  }

  /** The reservation of `orderId`. */
  reservation(orderId: string): Reservation | undefined {
    const r = this.db.prepare("SELECT * FROM carousel_reservations WHERE order_id = ?").get(
      orderId,
    );
    return r ? toReservation(r as Row) : undefined;
  }

  /** Inserts or replaces the reservation of `r.orderId`. */
  putReservation(r: Reservation): void {
    this.#writes++;
    this.db.prepare(
      `INSERT OR REPLACE INTO carousel_reservations
       (order_id, pizza_id, status, reserved_at, updated_at, item_id, storage_slot, expires_at, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      r.orderId,
      r.pizzaId,
      r.status,
      r.reservedAt,
      r.updatedAt,
      r.itemId,
      r.storageSlot,
      r.expiresAt,
      r.error,
    );
  }

  /** Removes the reservation of `orderId`. */
  deleteReservation(orderId: string): void {
    this.#writes++;
    this.db.prepare("DELETE FROM carousel_reservations WHERE order_id = ?").run(orderId);
  }

  /** Appends a food-safety log row. */
  logFoodSafety(e: FoodSafetyEntry): void {
    this.db.prepare(
      `INSERT INTO food_safety_log
       (log_id, at_ms, item_id, pizza_id, storage_slot, reason, above_limit_ms, storage_temp_c, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      e.logId,
      e.atMs,
      e.itemId,
      e.pizzaId,
      e.storageSlot,
      e.reason,
      e.aboveLimitMs,
      e.storageTempC,
      e.expiresAt,
    );
  }

  /** The food-safety log, oldest first. */
  foodSafetyLog(): FoodSafetyEntry[] {
    return this.db.prepare("SELECT * FROM food_safety_log ORDER BY at_ms, log_id").all().map(
      (row) => {
        const r = row as Row;
        return {
          logId: String(r.log_id),
          atMs: Number(r.at_ms),
          itemId: String(r.item_id),
          pizzaId: String(r.pizza_id),
          storageSlot: Number(r.storage_slot),
          reason: String(r.reason) as FoodSafetyEntry["reason"],
          aboveLimitMs: Number(r.above_limit_ms),
          storageTempC: r.storage_temp_c === null ? null : Number(r.storage_temp_c),
          expiresAt: Number(r.expires_at),
        };
      },
    );
  }

  /** Appends a maintenance log row. */
  logMaintenance(e: MaintenanceEntry): void {
    this.db.prepare(
      `INSERT INTO carousel_maintenance_log (log_id, at_ms, type, performed_by, description)
       VALUES (?, ?, ?, ?, ?)`,
    ).run(e.logId, e.atMs, e.type, e.performedBy, e.description);
  }

  /** The fingerprint of the restock made under idempotency key `key`, or null. */
  restockFingerprint(key: string): string | null {
    const r = this.db.prepare(
      "SELECT fingerprint FROM carousel_restocks WHERE idempotency_key = ?",
    ).get(key) as Row | undefined;
    return r ? String(r.fingerprint) : null;
  }

  /** Remembers the restock made under `key`; forgets keys used before `forgetBefore`. */
  rememberRestock(key: string, fingerprint: string, atMs: number, forgetBefore: number): void {
    this.db.prepare("DELETE FROM carousel_restocks WHERE at_ms < ?").run(forgetBefore);
    this.db.prepare(
      "INSERT INTO carousel_restocks (idempotency_key, fingerprint, at_ms) VALUES (?, ?, ?)",
    ).run(key, fingerprint, atMs);
  }

  /** A value of the carousel's own state, or `fallback` when never written. */
  getState<T>(key: string, fallback: T): T {
    const r = this.db.prepare("SELECT value FROM carousel_state WHERE key = ?").get(key) as
      | Row
      | undefined;
    return r ? JSON.parse(String(r.value)) as T : fallback;
  }

  /** Writes a value of the carousel's own state. */
  setState(key: string, value: unknown): void {
    this.db.prepare("INSERT OR REPLACE INTO carousel_state (key, value) VALUES (?, ?)").run(
      key,
      JSON.stringify(value),
    );
  }
}
