/**
 * The payment actor's tables in the machine journal. Every movement of money
 * is written here as an intent (STARTED) and committed before the gateway or
 * the cash dispenser is asked, and finished (DONE) after; on start, what is
 * still STARTED is re-issued under the same idempotency key.
 *
 * Nothing here holds a card number or a token: the last four digits at most.
 */
import { type Journal, migrate, transaction } from "../../journal/journal.ts";
import type { Payment, PaymentMethod, PaymentStatus } from "../../protocol/entities.ts";

/** Operations that move money, one journal row each. */
export type OpKind = "AUTHORIZE" | "CAPTURE" | "VOID" | "CASH_IN" | "CHANGE" | "RETURN";

/** How a finished operation ended. */
export type OpResult = "APPROVED" | "DECLINED" | "UNREACHABLE" | "SUPERSEDED";

/** A payment row. */
export interface PaymentRow {
  paymentId: string;
  orderId: string;
  /** 1 for the order's first payment; a new one only after a FAILED one. */
  attempt: number;
  method: PaymentMethod;
  amountCents: number;
  status: PaymentStatus;
  transactionId: string | null;
  last4: string | null;
  insertedCents: number;
  changeCents: number;
  gatewayResponse: Record<string, unknown> | null;
  processedAt: number | null;
  /** A refund was asked for: nothing may be captured any more. */
  refundRequested: boolean;
}

/** An operation row. */
export interface OpRow {
  idempotencyKey: string;
  paymentId: string;
  orderId: string;
  op: OpKind;
  amountCents: number;
  method: PaymentMethod;
  last4: string | null;
  state: "STARTED" | "DONE";
  result: OpResult | null;
  attempts: number;
}

const steps = [
  `CREATE TABLE payments (
     payment_id TEXT PRIMARY KEY,
     order_id TEXT NOT NULL,
     attempt INTEGER NOT NULL,
     method TEXT NOT NULL,
     amount_cents INTEGER NOT NULL,
     status TEXT NOT NULL,
     transaction_id TEXT,
     last4 TEXT,
     inserted_cents INTEGER NOT NULL DEFAULT 0,
     change_cents INTEGER NOT NULL DEFAULT 0,
     gateway_response TEXT,
     processed_at INTEGER,
     refund_requested INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     UNIQUE (order_id, attempt));
   CREATE TABLE payment_ops (
     idempotency_key TEXT PRIMARY KEY,
     payment_id TEXT NOT NULL REFERENCES payments (payment_id),
     order_id TEXT NOT NULL,
     op TEXT NOT NULL,
     amount_cents INTEGER NOT NULL,
     method TEXT NOT NULL,
     last4 TEXT,
     state TEXT NOT NULL,
     result TEXT,
     detail TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     started_at INTEGER NOT NULL,
     finished_at INTEGER);
   CREATE INDEX payment_ops_state ON payment_ops (state);
   CREATE INDEX payment_ops_payment ON payment_ops (payment_id, op);`,
];

/**
 * The idempotency key of `op` for the order's `attempt`: `<orderId>:<op>` for
 * the first payment, `<orderId>:<op>:<attempt>` after a failed one (a declined
 * key would otherwise replay the decline forever).
 */
export function opKey(orderId: string, op: string, attempt: number): string {
  return attempt === 1 ? `${orderId}:${op}` : `${orderId}:${op}:${attempt}`;
}

/** The payment as the protocol shows it. */
export function toPayment(row: PaymentRow): Payment {
  return {
    paymentId: row.paymentId,
    orderId: row.orderId,
    amountCents: row.amountCents,
    method: row.method,
    status: row.status,
    transactionId: row.transactionId,
    last4: row.last4,
    insertedCents: row.insertedCents,
    changeCents: row.changeCents,
    gatewayResponse: row.gatewayResponse,
    processedAt: row.processedAt,
  };
}

type Raw = Record<string, unknown>;

function paymentFrom(r: Raw): PaymentRow {
  return {
    paymentId: r.payment_id as string,
    orderId: r.order_id as string,
    attempt: r.attempt as number,
    method: r.method as PaymentMethod,
    amountCents: r.amount_cents as number,
    status: r.status as PaymentStatus,
    transactionId: (r.transaction_id as string | null) ?? null,
    last4: (r.last4 as string | null) ?? null,
    insertedCents: r.inserted_cents as number,
    changeCents: r.change_cents as number,
    gatewayResponse: r.gateway_response
      ? JSON.parse(r.gateway_response as string) as Record<string, unknown>
      : null,
    processedAt: (r.processed_at as number | null) ?? null,
    refundRequested: r.refund_requested === 1,
  };
}

function opFrom(r: Raw): OpRow {
  return {
    idempotencyKey: r.idempotency_key as string,
    paymentId: r.payment_id as string,
    orderId: r.order_id as string,
    op: r.op as OpKind,
    amountCents: r.amount_cents as number,
    method: r.method as PaymentMethod,
    last4: (r.last4 as string | null) ?? null,
    state: r.state as "STARTED" | "DONE",
    result: (r.result as OpResult | null) ?? null,
    attempts: r.attempts as number,
  };
}

/** Fields of a payment an update may change. */
export type PaymentChange = Partial<
  Pick<
    PaymentRow,
    | "status"
    | "transactionId"
    | "last4"
    | "insertedCents"
    | "changeCents"
    | "gatewayResponse"
    | "processedAt"
    | "refundRequested"
  >
>;

const columns: Record<keyof PaymentChange, string> = {
  status: "status",
  transactionId: "transaction_id",
  last4: "last4",
  insertedCents: "inserted_cents",
  changeCents: "change_cents",
  gatewayResponse: "gateway_response",
  processedAt: "processed_at",
  refundRequested: "refund_requested",
};

/** Typed access to the payment tables; every write is synchronous and durable. */
export class PaymentStore {
  /** Migrates the `payment` tables of `db`. */
  constructor(readonly db: Journal, private readonly now: () => number) {
    migrate(db, "payment", steps);
  }

  /** Runs `fn` in one transaction. */
  atomically<T>(fn: () => T): T {
    return transaction(this.db, fn);
  }

  /** The order's most recent payment, or null. */
  latest(orderId: string): PaymentRow | null {
    const r = this.db.prepare(
      "SELECT * FROM payments WHERE order_id = ? ORDER BY attempt DESC LIMIT 1",
    ).get(orderId) as Raw | undefined;
    return r ? paymentFrom(r) : null;
  }

  /** The payment `paymentId`. @throws {Error} When it does not exist (a bug). */
  get(paymentId: string): PaymentRow {
    const r = this.db.prepare("SELECT * FROM payments WHERE payment_id = ?").get(paymentId) as
      | Raw
      | undefined;
    if (!r) throw new Error(`Payment "${paymentId}" is not in the journal`);
    return paymentFrom(r);
  }

  /** Inserts a new payment (PENDING). */
  insertPayment(p: {
    paymentId: string;
    orderId: string;
    attempt: number;
    method: PaymentMethod;
    amountCents: number;
  }): PaymentRow {
    const now = this.now();
    this.db.prepare(
      `INSERT INTO payments (payment_id, order_id, attempt, method, amount_cents, status,
                             created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, 'PENDING', ?, ?)`,
    ).run(p.paymentId, p.orderId, p.attempt, p.method, p.amountCents, now, now);
    return this.get(p.paymentId);
  }

  /** Updates fields of a payment and returns it. */
  update(paymentId: string, change: PaymentChange): PaymentRow {
    const sets: string[] = [];
    const values: (string | number | null)[] = [];
    for (const [field, value] of Object.entries(change)) {
      sets.push(`${columns[field as keyof PaymentChange]} = ?`);
      values.push(
        field === "gatewayResponse"
          ? (value === null ? null : JSON.stringify(value))
          : typeof value === "boolean"
          ? (value ? 1 : 0)
          : value as string | number | null,
      );
    }
    sets.push("updated_at = ?");
    values.push(this.now(), paymentId);
    this.db.prepare(`UPDATE payments SET ${sets.join(", ")} WHERE payment_id = ?`).run(...values);
    return this.get(paymentId);
  }

  /** Writes the intent of an operation; a key already written is left as it is. */
  startOp(p: PaymentRow, op: OpKind, key: string, amountCents: number): OpRow {
    this.db.prepare(
      `INSERT OR IGNORE INTO payment_ops
         (idempotency_key, payment_id, order_id, op, amount_cents, method, last4, state, started_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'STARTED', ?)`,
    ).run(key, p.paymentId, p.orderId, op, amountCents, p.method, p.last4, this.now());
    return this.op(key)!;
  }

  /** Records an operation's attempts; `result` finishes it, null leaves it owed. */
  finishOp(key: string, result: OpResult | null, attempts: number, detail?: unknown): OpRow {
    this.db.prepare(
      `UPDATE payment_ops SET state = ?, result = ?, attempts = attempts + ?, detail = ?,
                              finished_at = ?
        WHERE idempotency_key = ?`,
    ).run(
      result ? "DONE" : "STARTED",
      result,
      attempts,
      detail === undefined ? null : JSON.stringify(detail),
      result ? this.now() : null,
      key,
    );
    return this.op(key)!;
  }

  /** The operation of `key`, or null. */
  op(key: string): OpRow | null {
    const r = this.db.prepare("SELECT * FROM payment_ops WHERE idempotency_key = ?").get(key) as
      | Raw
      | undefined;
    return r ? opFrom(r) : null;
  }

  /** The payment's (latest) operation of `kind`, or null. */
  opOf(paymentId: string, kind: OpKind): OpRow | null {
    const r = this.db.prepare(
      "SELECT * FROM payment_ops WHERE payment_id = ? AND op = ? ORDER BY started_at DESC, rowid DESC LIMIT 1",
    ).get(paymentId, kind) as Raw | undefined;
    return r ? opFrom(r) : null;
  }

  /** Number of operations of `kind` of a payment. */
  countOps(paymentId: string, kind: OpKind): number {
    return (this.db.prepare(
      "SELECT COUNT(*) AS n FROM payment_ops WHERE payment_id = ? AND op = ?",
    ).get(paymentId, kind) as { n: number }).n;
  }

  /** Operations still owed (STARTED), oldest first. */
  startedOps(): OpRow[] {
    return (this.db.prepare(
      "SELECT * FROM payment_ops WHERE state = 'STARTED' ORDER BY started_at, rowid",
    ).all() as Raw[]).map(opFrom);
  }
}
