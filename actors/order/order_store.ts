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
  // A client's idempotency key: claimed (with the order it concerns) before
  // the request acts, its first successful reply remembered once it has one.
  `CREATE TABLE order_requests (
    idempotency_key TEXT PRIMARY KEY,
    verb TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    order_id TEXT NOT NULL,
    reply_json TEXT,
    created_at INTEGER NOT NULL
  )`,
  "CREATE INDEX order_requests_age ON order_requests (created_at)",
];

/** A request made under an idempotency key, as journaled. */
export interface KeyedRequest {
  key: string;
  /** The command: `create` or `pay`. */
  verb: string;
  /** A digest of the command and its body: the same request, or another. */
  fingerprint: string;
  orderId: string;
  /** The first successful reply, or null while none has come. */
  reply: unknown;
  createdAt: number;
}

/** Reads and writes order rows. */
export class OrderStore {
  private readonly upsert;
  private readonly byId;
  private readonly open;
  private readonly requestByKey;
  private readonly claim;
  private readonly answer;
  private readonly forget;

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
    this.requestByKey = db.prepare("SELECT * FROM order_requests WHERE idempotency_key = ?");
    this.claim = db.prepare(
      `INSERT INTO order_requests (idempotency_key, verb, fingerprint, order_id, created_at)
       VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING`,
    );
    this.answer = db.prepare(
      "UPDATE order_requests SET reply_json = ? WHERE idempotency_key = ? AND reply_json IS NULL",
    );
    this.forget = db.prepare("DELETE FROM order_requests WHERE created_at < ?");
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

  /** The request made under idempotency key `key`, or null. */
  request(key: string): KeyedRequest | null {
    const row = this.requestByKey.get(key);
    return row
      ? {
        key: String(row.idempotency_key),
        verb: String(row.verb),
        fingerprint: String(row.fingerprint),
        orderId: String(row.order_id),
        reply: row.reply_json === null ? null : JSON.parse(String(row.reply_json)),
        createdAt: Number(row.created_at),
      }
      : null;
  }

  /**
   * Claims `key` for a request about `orderId` (a no-op when claimed already),
   * and forgets keys claimed before `forgetBefore`.
   */
  claimRequest(
    req: { key: string; verb: string; fingerprint: string; orderId: string },
    now: number,
    forgetBefore: number,
  ): void {
    this.forget.run(forgetBefore);
    this.claim.run(req.key, req.verb, req.fingerprint, req.orderId, now);
  }

  /** Remembers `reply` as the first successful reply to the request under `key`. */
  answerRequest(key: string, reply: unknown): void {
    this.answer.run(JSON.stringify(reply), key);
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
