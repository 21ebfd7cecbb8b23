/**
 * The order journal: one row per order in the machine's SQLite journal,
 * written before the order's money moves or its hardware acts, and read back
 * on start so that every paid order ends DISPENSED or REFUNDED.
 */
import { type Journal, migrate } from "../../journal/journal.ts";
import { Order, type OrderStatus, Payment, Pizza } from "../../protocol/entities.ts";

/** Where an order's flow stands, for recovery after a restart. */
export type OrderStage =
  | "pending"
  | "paying"
  | "payment_pending"
  | "queued"
  | "preparing"
  | "ready"
  | "settling"
  | "refunding"
  | "done";

/** An order as journaled: the entity plus what recovery needs. */
export interface OrderRecord {
  order: Order;
  /** The menu line as it was when the order was placed. */
  pizza: Pizza;
  stage: OrderStage;
  wrongCodes: number;
  locked: boolean;
  paidAt: number | null;
  /** The payment as last reported by the payment component. */
  payment: Payment | null;
}

const steps = [
  `CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    machine_id TEXT NOT NULL,
    status TEXT NOT NULL,
    stage TEXT NOT NULL,
    order_json TEXT NOT NULL,
    pizza_json TEXT NOT NULL,
    wrong_codes INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0,
    paid_at INTEGER,
    payment_json TEXT,
    updated_at INTEGER NOT NULL
  )`,
  "CREATE INDEX orders_open ON orders (stage) WHERE stage <> 'done'",
];

/** Reads and writes order rows. */
export class OrderStore {
  private readonly upsert;
  private readonly byId;
  private readonly open;

  /** Migrates the `orders` tables of `db`. */
  constructor(private readonly db: Journal) {
    migrate(db, "order", steps);
    this.upsert = db.prepare(
      `INSERT INTO orders (order_id, machine_id, status, stage, order_json, pizza_json, wrong_codes, locked, paid_at, payment_json, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, stage = excluded.stage,
         order_json = excluded.order_json, wrong_codes = excluded.wrong_codes,
         locked = excluded.locked, paid_at = excluded.paid_at, payment_json = excluded.payment_json,
         updated_at = excluded.updated_at`,
    );
    this.byId = db.prepare("SELECT * FROM orders WHERE order_id = ?");
    this.open = db.prepare("SELECT * FROM orders WHERE stage <> 'done' ORDER BY rowid");
  }

  /** Writes `record` (one autocommitted statement, durable on return). */
  save(record: OrderRecord, now: number): void {
    const { order } = record;
    this.upsert.run(
      order.orderId,
      order.machineId,
      order.status,
      record.stage,
      JSON.stringify(order),
      JSON.stringify(record.pizza),
      record.wrongCodes,
      record.locked ? 1 : 0,
      record.paidAt,
      record.payment ? JSON.stringify(record.payment) : null,
      now,
    );
  }

  /** The order `orderId`, or null. */
  get(orderId: string): OrderRecord | null {
    const row = this.byId.get(orderId);
    return row ? toRecord(row) : null;
  }

  /** Orders whose flow has not ended, oldest first. */
  unfinished(): OrderRecord[] {
    return this.open.all().map(toRecord);
  }

  /** The status of `orderId` as journaled (for tests and audits). */
  status(orderId: string): OrderStatus | null {
    return this.get(orderId)?.order.status ?? null;
  }
}

function toRecord(row: Record<string, unknown>): OrderRecord {
  return {
    order: Order.parse(JSON.parse(String(row.order_json))),
    pizza: Pizza.parse(JSON.parse(String(row.pizza_json))),
    stage: String(row.stage) as OrderStage,
    wrongCodes: Number(row.wrong_codes),
    locked: Number(row.locked) === 1,
    paidAt: row.paid_at === null ? null : Number(row.paid_at),
    payment: row.payment_json ? Payment.parse(JSON.parse(String(row.payment_json))) : null,
  };
}
