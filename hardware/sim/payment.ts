/**
 * Simulated payment hardware: a Stripe-like gateway driven by test tokens, the
 * card reader (online unless the plant's `cardReaderOffline` is set) and a cash
 * acceptor that records what it paid out.
 *
 * The gateway keeps its ledger in SQLite, optionally in a file of its own, so a
 * test can kill and restart the controller and still ask the gateway what it
 * saw. A request is recorded when it arrives and answered after the latency:
 * a controller killed meanwhile has moved money it does not know about yet,
 * which is exactly what its journal and the idempotency keys must cope with.
 *
 * Test tokens: `tok_visa` (4242) and `tok_mastercard` (4444) approve;
 * `tok_chargeDeclined` declines; `tok_timeout` never answers the first attempt
 * of an idempotency key, then approves; `tok_gatewayDown` never answers.
 */
import { type Clock, sleep } from "../../clock/clock.ts";
import { type Journal, migrate, openJournal, transaction } from "../../journal/journal.ts";
import type {
  AuthorizeRequest,
  CallOptions,
  CaptureRequest,
  CardReader,
  CashAcceptor,
  GatewayResult,
  PaymentGateway,
  PayoutReason,
  PayoutRequest,
  RefundRequest,
  VoidRequest,
} from "../payment.ts";
import type { SimPlant } from "./plant.ts";

/** What each test token stands for; the numbers never leave this module. */
const testCards: Record<string, { brand: string; number: string; behaviour: Behaviour }> = {
  tok_visa: { brand: "visa", number: "4242424242424242", behaviour: "approve" },
  tok_mastercard: { brand: "mastercard", number: "5555555555554444", behaviour: "approve" },
  tok_chargeDeclined: { brand: "visa", number: "4000000000000002", behaviour: "decline" },
  tok_timeout: { brand: "visa", number: "4000000000000119", behaviour: "timeoutFirst" },
  tok_gatewayDown: { brand: "visa", number: "4000000000000101", behaviour: "silent" },
};
type Behaviour = "approve" | "decline" | "timeoutFirst" | "silent";

/** Gateway operations, as the ledger names them. */
export type GatewayOp = "authorize" | "capture" | "void" | "refund";

/** One call the gateway received (answered or not). */
export interface LedgerCall {
  idempotencyKey: string;
  op: GatewayOp;
  orderId: string;
  at: number;
}

/** One movement of money the gateway made (at most one per idempotency key). */
export interface LedgerEntry {
  idempotencyKey: string;
  orderId: string;
  transactionId: string;
  amountCents: number;
  at: number;
}

/** One payout of the cash acceptor. */
export interface LedgerPayout {
  idempotencyKey: string;
  orderId: string;
  amountCents: number;
  why: PayoutReason;
  at: number;
}

/** Read helpers over the simulated gateway's and acceptor's ledger. */
export interface SimLedger {
  /** Every call received for `orderId`, answered or not, oldest first. */
  calls(orderId: string, op?: GatewayOp): LedgerCall[];
  /** Authorizations the gateway granted for `orderId`. */
  authorizations(orderId: string): LedgerEntry[];
  /** Captures (charges) for `orderId`. */
  captures(orderId: string): LedgerEntry[];
  /** Voided authorizations of `orderId`. */
  voids(orderId: string): LedgerEntry[];
  /** Refunds of captured charges of `orderId`. */
  refunds(orderId: string): LedgerEntry[];
  /** Cash paid out for `orderId`. */
  payouts(orderId: string): LedgerPayout[];
}

const ledgerSteps = [
  `CREATE TABLE sim_gateway_calls (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     idempotency_key TEXT NOT NULL, op TEXT NOT NULL, order_id TEXT NOT NULL, at INTEGER NOT NULL);
   CREATE INDEX sim_gateway_calls_order ON sim_gateway_calls (order_id);
   CREATE TABLE sim_gateway_requests (
     idempotency_key TEXT PRIMARY KEY, op TEXT NOT NULL, order_id TEXT NOT NULL,
     token TEXT, attempts INTEGER NOT NULL, result TEXT);
   CREATE TABLE sim_gateway_transactions (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, transaction_id TEXT NOT NULL UNIQUE,
     order_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, last4 TEXT NOT NULL,
     state TEXT NOT NULL);
   CREATE TABLE sim_gateway_ledger (
     idempotency_key TEXT PRIMARY KEY, kind TEXT NOT NULL, order_id TEXT NOT NULL,
     transaction_id TEXT NOT NULL, amount_cents INTEGER NOT NULL, at INTEGER NOT NULL);
   CREATE INDEX sim_gateway_ledger_order ON sim_gateway_ledger (order_id, kind);
   CREATE TABLE sim_cash_payouts (
     idempotency_key TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount_cents INTEGER NOT NULL,
     why TEXT NOT NULL, at INTEGER NOT NULL);`,
];

/** Opens (creating) a simulated ledger in `db`, e.g. to read it from a test. */
export function openSimLedger(db: Journal): SimLedger {
  migrate(db, "sim_payment", ledgerSteps);
  const entries = (kind: string, orderId: string): LedgerEntry[] =>
    db.prepare(
      `SELECT idempotency_key AS idempotencyKey, order_id AS orderId,
              transaction_id AS transactionId, amount_cents AS amountCents, at
         FROM sim_gateway_ledger WHERE order_id = ? AND kind = ? ORDER BY at, rowid`,
    ).all(orderId, kind) as unknown as LedgerEntry[];
  return {
    calls: (orderId, op) =>
      db.prepare(
        `SELECT idempotency_key AS idempotencyKey, op, order_id AS orderId, at
           FROM sim_gateway_calls WHERE order_id = ? AND (? IS NULL OR op = ?) ORDER BY seq`,
      ).all(orderId, op ?? null, op ?? null) as unknown as LedgerCall[],
    authorizations: (orderId) => entries("authorization", orderId),
    captures: (orderId) => entries("capture", orderId),
    voids: (orderId) => entries("void", orderId),
    refunds: (orderId) => entries("refund", orderId),
    payouts: (orderId) =>
      db.prepare(
        `SELECT idempotency_key AS idempotencyKey, order_id AS orderId,
                amount_cents AS amountCents, why, at
           FROM sim_cash_payouts WHERE order_id = ? ORDER BY at, rowid`,
      ).all(orderId) as unknown as LedgerPayout[],
  };
}

/** Options of {@linkcode createSimPayment}. */
export interface SimPaymentOptions {
  /** SQLite file of the gateway's ledger (default: in memory). */
  ledgerPath?: string;
  /** Clock ms every gateway answer takes (default 300). */
  latencyMs?: number;
  /** Denominations the cash acceptor takes (default US coins and bills). */
  acceptedCents?: readonly number[];
}

/** The simulated payment hardware of one machine. */
export interface SimPayment {
  gateway: PaymentGateway;
  reader: CardReader;
  cash: CashAcceptor;
  ledger: SimLedger;
  /** While set, the gateway answers nothing (an outage of every operation). */
  setGatewayDown(down: boolean): void;
  /** While set, every payout fails (a jammed dispenser). */
  setPayoutJammed(jammed: boolean): void;
  /** Closes the ledger database. */
  close(): void;
}

/** Default denominations: 5¢ to $20. */
export const defaultAcceptedCents: readonly number[] = [5, 10, 25, 100, 500, 1000, 2000];

/** Creates the simulated gateway, card reader and cash acceptor on `plant`. */
export function createSimPayment(plant: SimPlant, options: SimPaymentOptions = {}): SimPayment {
  const clock = plant.clock;
  const latencyMs = options.latencyMs ?? 300;
  const db = openJournal(options.ledgerPath ?? ":memory:");
  const ledger = openSimLedger(db);
  const accepted = [...(options.acceptedCents ?? defaultAcceptedCents)];
  let down = false;
  let jammed = false;

  const gateway = createSimGateway(db, clock, latencyMs, () => down);
  const reader: CardReader = {
    online: () => !plant.get("cardReaderOffline"),
    onChange: (fn) =>
      plant.onChange((signal, value) => {
        if (signal === "cardReaderOffline") fn(!value);
      }),
  };
  const cash: CashAcceptor = {
    acceptedCents: () => accepted,
    async payOut(req: PayoutRequest, opts?: CallOptions) {
      await sleep(clock, Math.min(latencyMs, 100), opts?.signal);
      if (jammed) throw new Error("Change dispenser jammed");
      db.prepare(
        `INSERT OR IGNORE INTO sim_cash_payouts (idempotency_key, order_id, amount_cents, why, at)
         VALUES (?, ?, ?, ?, ?)`,
      ).run(req.idempotencyKey, req.orderId, req.amountCents, req.why, clock.now());
    },
  };
  return {
    gateway,
    reader,
    cash,
    ledger,
    setGatewayDown: (value) => void (down = value),
    setPayoutJammed: (value) => void (jammed = value),
    close: () => db.close(),
  };
}

type Stored = { op: GatewayOp; token: string | null; attempts: number; result: string | null };

function createSimGateway(
  db: Journal,
  clock: Clock,
  latencyMs: number,
  isDown: () => boolean,
): PaymentGateway {
  const logCall = db.prepare(
    "INSERT INTO sim_gateway_calls (idempotency_key, op, order_id, at) VALUES (?, ?, ?, ?)",
  );
  const getRequest = db.prepare(
    "SELECT op, token, attempts, result FROM sim_gateway_requests WHERE idempotency_key = ?",
  );
  const putRequest = db.prepare(
    `INSERT INTO sim_gateway_requests (idempotency_key, op, order_id, token, attempts, result)
     VALUES (?, ?, ?, ?, 1, NULL)
     ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1`,
  );
  const saveResult = db.prepare(
    "UPDATE sim_gateway_requests SET result = ? WHERE idempotency_key = ?",
  );
  const getTxn = db.prepare(
    "SELECT order_id, amount_cents, last4, state FROM sim_gateway_transactions WHERE transaction_id = ?",
  );
  const setTxnState = db.prepare(
    "UPDATE sim_gateway_transactions SET state = ? WHERE transaction_id = ?",
  );
  const addLedger = db.prepare(
    `INSERT INTO sim_gateway_ledger (idempotency_key, kind, order_id, transaction_id, amount_cents, at)
     VALUES (?, ?, ?, ?, ?, ?)`,
  );

  /** Waits for the answer to travel back; aborting rejects like a lost connection. */
  const answer = async (result: GatewayResult, signal?: AbortSignal): Promise<GatewayResult> => {
    await sleep(clock, latencyMs, signal);
    return result;
  };
  const silence = (signal?: AbortSignal): Promise<never> =>
    new Promise((_, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
    });

  /**
   * Stripe's idempotency: the first decided result of a key is saved and
   * replayed; a key reused for another operation is refused.
   */
  const handle = (
    op: GatewayOp,
    req: { idempotencyKey: string; orderId: string },
    token: string | null,
    decide: (stored: Stored) => GatewayResult | "silent",
    signal?: AbortSignal,
  ): Promise<GatewayResult> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const decided = transaction(db, (): GatewayResult | "silent" => {
      logCall.run(req.idempotencyKey, op, req.orderId, clock.now());
      if (isDown()) return "silent";
      const before = getRequest.get(req.idempotencyKey) as Stored | undefined;
      if (before && before.op !== op) {
        return declined("idempotency_key_reused", `Key used for "${before.op}" before`);
      }
      if (before?.result) return JSON.parse(before.result) as GatewayResult;
      putRequest.run(req.idempotencyKey, op, req.orderId, token ?? before?.token ?? null);
      const stored = getRequest.get(req.idempotencyKey) as Stored;
      const result = decide(stored);
      if (result !== "silent") saveResult.run(JSON.stringify(result), req.idempotencyKey);
      return result;
    });
    return decided === "silent" ? silence(signal) : answer(decided, signal);
  };

  /** Moves the transaction of `req` to `state` and books `amountCents` of it as `kind`. */
  const book = (
    req: { idempotencyKey: string; orderId: string; transactionId: string },
    kind: Exclude<GatewayOp, "authorize">,
    state: "CAPTURED" | "VOIDED" | "REFUNDED",
    amountCents: number,
  ) => {
    setTxnState.run(state, req.transactionId);
    addLedger.run(
      req.idempotencyKey,
      kind,
      req.orderId,
      req.transactionId,
      amountCents,
      clock.now(),
    );
  };

  const txnOf = (transactionId: string) =>
    getTxn.get(transactionId) as
      | { order_id: string; amount_cents: number; last4: string; state: string }
      | undefined;

  return {
    authorize(req: AuthorizeRequest, opts?: CallOptions) {
      return handle("authorize", req, req.token, (stored) => {
        const card = stored.token ? testCards[stored.token] : undefined;
        if (!stored.token) return declined("resource_missing", "No such request and no token");
        if (!card) return declined("token_invalid", "Unknown token");
        const last4 = card.number.slice(-4);
        if (card.behaviour === "silent") return "silent";
        if (card.behaviour === "timeoutFirst" && stored.attempts === 1) return "silent";
        if (card.behaviour === "decline") {
          return { ...declined("card_declined", "Your card was declined"), last4 };
        }
        const seq = (db.prepare("SELECT COUNT(*) AS n FROM sim_gateway_transactions").get() as {
          n: number;
        }).n + 1;
        const transactionId = `pi_sim_${String(seq).padStart(6, "0")}`;
        db.prepare(
          `INSERT INTO sim_gateway_transactions (transaction_id, order_id, amount_cents, last4, state)
           VALUES (?, ?, ?, ?, 'HELD')`,
        ).run(transactionId, req.orderId, req.amountCents, last4);
        addLedger.run(
          req.idempotencyKey,
          "authorization",
          req.orderId,
          transactionId,
          req.amountCents,
          clock.now(),
        );
        return {
          type: "approved",
          transactionId,
          last4,
          response: { id: transactionId, status: "requires_capture", brand: card.brand, last4 },
        };
      }, opts?.signal);
    },

    capture(req: CaptureRequest, opts?: CallOptions) {
      return handle("capture", req, null, () => {
        const txn = txnOf(req.transactionId);
        if (!txn) return declined("resource_missing", "No such authorization");
        if (txn.state !== "HELD") {
          return declined("charge_not_capturable", `Authorization is ${txn.state}`);
        }
        if (req.amountCents > txn.amount_cents) {
          return declined("amount_too_large", "Capture exceeds the authorization");
        }
        book(req, "capture", "CAPTURED", req.amountCents);
        return approved(req.transactionId, txn.last4, "succeeded");
      }, opts?.signal);
    },

    void(req: VoidRequest, opts?: CallOptions) {
      return handle("void", req, null, () => {
        const txn = txnOf(req.transactionId);
        if (!txn) return declined("resource_missing", "No such authorization");
        if (txn.state !== "HELD") {
          return declined("charge_not_voidable", `Authorization is ${txn.state}`);
        }
        book(req, "void", "VOIDED", txn.amount_cents);
        return approved(req.transactionId, txn.last4, "canceled");
      }, opts?.signal);
    },

    refund(req: RefundRequest, opts?: CallOptions) {
      return handle("refund", req, null, () => {
        const txn = txnOf(req.transactionId);
        if (!txn) return declined("resource_missing", "No such charge");
        if (txn.state !== "CAPTURED") {
          return declined("charge_not_refundable", `Charge is ${txn.state}`);
        }
        book(req, "refund", "REFUNDED", req.amountCents);
        return approved(req.transactionId, txn.last4, "refunded");
      }, opts?.signal);
    },
  };
}

function declined(code: string, message: string): GatewayResult {
  return { type: "declined", code, message, last4: null, response: { error: code, message } };
}

function approved(transactionId: string, last4: string, status: string): GatewayResult {
  return { type: "approved", transactionId, last4, response: { id: transactionId, status } };
}
