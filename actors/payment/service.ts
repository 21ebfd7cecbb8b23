/**
 * The payment rules, apart from the bus: authorize, take cash, settle, refund,
 * each at most once per order and journaled before money moves. A repeat of an
 * operation in flight joins it; a repeat of a finished one gets its result.
 */
import { createActor, fromPromise } from "xstate";
import type { Clock } from "../../clock/clock.ts";
import type { Logger } from "../../log/log.ts";
import type { Random } from "../../random/random.ts";
import { fail, ok, type Result } from "../../protocol/define.ts";
import type { Payment } from "../../protocol/entities.ts";
import type {
  AuthorizeRequest,
  CardReader,
  CashAcceptor,
  GatewayResult,
  PaymentGateway,
  PayoutReason,
} from "../../hardware/payment.ts";
import { gatewayOpMachine, type OpOutcome, type RetryPolicy } from "./machine.ts";
import { opKey, type OpRow, type PaymentRow, type PaymentStore, toPayment } from "./store.ts";

/** The payment actor's hardware. */
export interface PaymentHardware {
  gateway: PaymentGateway;
  reader: CardReader;
  cash: CashAcceptor;
}

/** What the service tells the world; the host puts it on the bus. */
export interface PaymentEvents {
  changed(row: PaymentRow): void;
  cashOut(orderId: string, amountCents: number, why: PayoutReason): void;
  alert(orderId: string, severity: "WARNING" | "CRITICAL", message: string): void;
}

/** What the service needs from its host. */
export interface PaymentServiceDeps {
  store: PaymentStore;
  hw: PaymentHardware;
  clock: Clock;
  random: Random;
  log: Logger;
  policy: RetryPolicy;
  events: PaymentEvents;
  /** Denominations taken now. */
  acceptedCents(): number[];
  /** Whether the card reader is online. */
  cardsAccepted(): boolean;
}

/** In-flight work of a payment that a repeat joins. */
type Flight = "authorize" | "capture" | "void" | "change";

const stoppedResult: Result<Payment> = fail("UNAVAILABLE", "Payment actor is stopping");

/** The payment rules over the journal and the hardware. */
export class PaymentService {
  private readonly inflight = new Map<string, Promise<Result<Payment>>>();
  private readonly running = new Set<() => void>();
  private stopped = false;

  /** Binds the rules to `deps`. */
  constructor(private readonly deps: PaymentServiceDeps) {}

  private get store(): PaymentStore {
    return this.deps.store;
  }

  /** Authorizes a card or wallet payment for an order, or returns the order's live one. */
  authorize(req: {
    orderId: string;
    amountCents: number;
    method: "CARD" | "MOBILE_PAY";
    token: string;
  }): Promise<Result<Payment>> {
    if (this.stopped) return Promise.resolve(stoppedResult);
    const live = this.live(req.orderId);
    if (live) {
      return this.inflight.get(flightKey(live, "authorize")) ??
        Promise.resolve(ok(toPayment(live)));
    }
    if (!this.deps.cardsAccepted()) {
      return Promise.resolve(fail("CONFLICT", "card reader offline: cash only"));
    }
    const attempt = (this.store.latest(req.orderId)?.attempt ?? 0) + 1;
    const key = opKey(req.orderId, "authorize", attempt);
    const row = this.store.atomically(() => {
      const row = this.store.insertPayment({
        paymentId: this.deps.random.uuid(),
        orderId: req.orderId,
        attempt,
        method: req.method,
        amountCents: req.amountCents,
      });
      this.store.startOp(row, "AUTHORIZE", key, req.amountCents);
      return row;
    });
    this.deps.events.changed(row);
    this.deps.log.log("info", "authorization started", {
      orderId: req.orderId,
      paymentId: row.paymentId,
      method: req.method,
      amountCents: req.amountCents,
      attempt,
    });
    // The token lives only in this closure: never journaled, logged or published.
    return this.once(row, "authorize", () => this.performAuthorize(row.paymentId, key, req.token));
  }

  /**
   * Takes one bill or coin for an order; once enough is in, escrows it and pays
   * change. `requestId` (the request's envelope id) makes a redelivered request
   * count its bill once.
   */
  async insertCash(req: {
    orderId: string;
    amountCents: number;
    denominationCents: number;
    requestId?: string;
  }): Promise<Result<Payment>> {
    if (this.stopped) return stoppedResult;
    const { orderId, denominationCents: denom } = req;
    const accepted = this.deps.acceptedCents();
    if (!accepted.includes(denom)) {
      return fail(
        "BAD_REQUEST",
        `Denomination ${denom} cents is not accepted; accepted: ${accepted.join(", ")} cents`,
      );
    }
    const live = this.live(orderId);
    const cashInKey = (attempt: number, n: number) =>
      `${opKey(orderId, "cash_in", attempt)}:${req.requestId ?? n}`;
    if (req.requestId) {
      // The same request delivered again: this bill is in already.
      const attempt = live?.attempt ?? (this.store.latest(orderId)?.attempt ?? 0) + 1;
      const seen = this.store.op(cashInKey(attempt, 0));
      if (seen) return ok(toPayment(this.store.get(seen.paymentId)));
    }
    if (live && live.method !== "CASH") {
      return fail(
        "CONFLICT",
        `Order "${orderId}" already has a ${live.method} payment (${live.status}); the ${denom} cents are handed back`,
      );
    }
    if (live && (live.status !== "PENDING" || live.refundRequested)) {
      return fail(
        "CONFLICT",
        `Cash payment of order "${orderId}" is already ${live.status}; the ${denom} cents are handed back`,
      );
    }
    if (live && live.amountCents !== req.amountCents) {
      return fail(
        "CONFLICT",
        `Cash payment of order "${orderId}" is for ${live.amountCents} cents, not ${req.amountCents}`,
      );
    }
    const attempt = live?.attempt ?? (this.store.latest(orderId)?.attempt ?? 0) + 1;
    const changeKey = opKey(orderId, "change", attempt);
    const row = this.store.atomically(() => {
      const p = live ?? this.store.insertPayment({
        paymentId: this.deps.random.uuid(),
        orderId,
        attempt,
        method: "CASH",
        amountCents: req.amountCents,
      });
      const n = this.store.countOps(p.paymentId, "CASH_IN") + 1;
      const inKey = cashInKey(attempt, n);
      this.store.startOp(p, "CASH_IN", inKey, denom);
      this.store.finishOp(inKey, "APPROVED", 1);
      const insertedCents = p.insertedCents + denom;
      if (insertedCents < p.amountCents) return this.store.update(p.paymentId, { insertedCents });
      const changeCents = insertedCents - p.amountCents;
      const paid = this.store.update(p.paymentId, {
        insertedCents,
        changeCents,
        status: "AUTHORIZED",
        processedAt: this.deps.clock.now(),
      });
      if (changeCents > 0) this.store.startOp(paid, "CHANGE", changeKey, changeCents);
      return paid;
    });
    this.deps.events.changed(row);
    this.deps.log.log("info", "cash inserted", {
      orderId,
      paymentId: row.paymentId,
      denominationCents: denom,
      insertedCents: row.insertedCents,
      status: row.status,
    });
    if (row.status === "AUTHORIZED" && row.changeCents > 0) {
      // The payment is escrowed whether or not the change came out; a failed
      // payout is alerted and stays owed.
      await this.once(row, "change", () => this.performPayout(row.paymentId, changeKey));
    }
    return ok(toPayment(this.store.get(row.paymentId)));
  }

  /** Captures the card authorization or keeps the cash: the pizza was taken. */
  settle(orderId: string): Promise<Result<Payment>> {
    if (this.stopped) return Promise.resolve(stoppedResult);
    const p = this.store.latest(orderId);
    if (!p) return Promise.resolve(fail("NOT_FOUND", `No payment for order "${orderId}"`));
    const capturing = this.inflight.get(flightKey(p, "capture"));
    if (capturing) return capturing;
    const refused = (message: string) => Promise.resolve(fail<Payment>("CONFLICT", message));
    if (this.inflight.has(flightKey(p, "authorize"))) {
      return refused(`Payment of order "${orderId}" is still being authorized; nothing to settle`);
    }
    if (p.status === "COMPLETED") return Promise.resolve(ok(toPayment(p)));
    if (p.refundRequested || p.status === "VOIDED" || p.status === "REFUNDED") {
      return refused(
        `Payment of order "${orderId}" was refunded (${p.status}); it cannot be settled`,
      );
    }
    if (p.status !== "AUTHORIZED") {
      return refused(
        `Payment of order "${orderId}" is ${p.status}; only an AUTHORIZED payment can be settled`,
      );
    }
    if (p.method === "CASH") {
      const row = this.store.update(p.paymentId, {
        status: "COMPLETED",
        processedAt: this.deps.clock.now(),
      });
      this.deps.events.changed(row);
      this.deps.log.log("info", "cash kept", { orderId, paymentId: p.paymentId });
      return Promise.resolve(ok(toPayment(row)));
    }
    const key = opKey(orderId, "capture", p.attempt);
    this.store.atomically(() => this.store.startOp(p, "CAPTURE", key, p.amountCents));
    return this.once(p, "capture", () => this.performCapture(p.paymentId, key));
  }

  /** Voids the authorization or hands the cash back; CONFLICT once settled. */
  async refund(orderId: string, reason: string): Promise<Result<Payment>> {
    if (this.stopped) return stoppedResult;
    const p = this.store.latest(orderId);
    if (!p) return fail("NOT_FOUND", `No payment for order "${orderId}"`);
    // An authorization, capture or change payout in flight decides what a
    // refund must undo: let it finish first.
    const busy = this.inflight.get(flightKey(p, "authorize")) ??
      this.inflight.get(flightKey(p, "capture")) ??
      this.inflight.get(flightKey(p, "change"));
    if (busy) {
      await busy;
      return this.refund(orderId, reason);
    }
    const voiding = this.inflight.get(flightKey(p, "void"));
    if (voiding) return voiding;
    if (p.status === "VOIDED" || p.status === "REFUNDED") return ok(toPayment(p));
    if (p.status === "COMPLETED" || this.store.opOf(p.paymentId, "CAPTURE")) {
      return fail(
        "CONFLICT",
        `Payment of order "${orderId}" was settled (${p.status}): the pizza was taken, so it cannot be refunded`,
      );
    }
    if (p.status === "FAILED") {
      return fail(
        "CONFLICT",
        `Payment of order "${orderId}" FAILED: nothing was charged, so there is nothing to refund`,
      );
    }
    this.deps.log.log("info", "refund requested", {
      orderId,
      paymentId: p.paymentId,
      method: p.method,
      status: p.status,
      reason,
    });
    if (p.method === "CASH") {
      const change = this.store.opOf(p.paymentId, "CHANGE");
      const changePaid = change?.result === "APPROVED" ? p.changeCents : 0;
      const amountCents = p.insertedCents - changePaid;
      const key = opKey(orderId, "return", p.attempt);
      this.store.atomically(() => {
        // Change never paid out is returned with the rest, in one payout.
        if (change?.state === "STARTED") {
          this.store.finishOp(change.idempotencyKey, "SUPERSEDED", 0);
        }
        this.store.update(p.paymentId, { refundRequested: true });
        this.store.startOp(p, "RETURN", key, amountCents);
      });
      return this.once(p, "void", () => this.performPayout(p.paymentId, key));
    }
    const key = opKey(orderId, "void", p.attempt);
    this.store.atomically(() => {
      this.store.update(p.paymentId, { refundRequested: true });
      this.store.startOp(p, "VOID", key, p.amountCents);
    });
    return this.once(p, "void", () => this.performVoid(p.paymentId, key));
  }

  /** The order's latest payment. */
  status(orderId: string): Result<Payment> {
    const p = this.store.latest(orderId);
    return p ? ok(toPayment(p)) : fail("NOT_FOUND", `No payment for order "${orderId}"`);
  }

  /**
   * Re-issues every operation still owed (STARTED) under its own idempotency
   * key: at start this is the recovery after a crash; later, the retry of
   * captures, voids and payouts whose gateway or dispenser was unreachable.
   */
  sweep(): void {
    for (const op of this.store.startedOps()) {
      if (this.stopped) return;
      const p = this.store.get(op.paymentId);
      const flight = flightOf(op);
      if (!flight || this.inflight.has(flightKey(p, flight))) continue;
      this.deps.log.log("info", "re-issuing owed operation", {
        orderId: op.orderId,
        op: op.op,
        idempotencyKey: op.idempotencyKey,
      });
      this.once(p, flight, () => this.resume(op)).catch((err: unknown) =>
        this.deps.log.log("error", "re-issue failed", { orderId: op.orderId, err: String(err) })
      );
    }
  }

  /** Aborts calls in flight (leaving their journal rows owed) and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const abort of [...this.running]) abort();
    await Promise.allSettled([...this.inflight.values()]);
  }

  private resume(op: OpRow): Promise<Result<Payment>> {
    switch (op.op) {
      case "AUTHORIZE":
        return this.performAuthorize(op.paymentId, op.idempotencyKey, null);
      case "CAPTURE":
        return this.performCapture(op.paymentId, op.idempotencyKey);
      case "VOID":
        return this.performVoid(op.paymentId, op.idempotencyKey);
      default:
        return this.performPayout(op.paymentId, op.idempotencyKey);
    }
  }

  /** The order's payment unless it failed (after a failure another may be tried). */
  private live(orderId: string): PaymentRow | null {
    const p = this.store.latest(orderId);
    return p && p.status !== "FAILED" ? p : null;
  }

  private once(
    p: PaymentRow,
    flight: Flight,
    run: () => Promise<Result<Payment>>,
  ): Promise<Result<Payment>> {
    const key = flightKey(p, flight);
    const existing = this.inflight.get(key);
    if (existing) return existing;
    const promise = run().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return promise;
  }

  /** Runs one operation under the retry policy; null when stopped meanwhile. */
  private runOp(call: (signal: AbortSignal) => Promise<GatewayResult>): Promise<OpOutcome | null> {
    if (this.stopped) return Promise.resolve(null);
    return new Promise((resolve) => {
      const machine = gatewayOpMachine.provide({
        actors: { call: fromPromise(({ signal }) => call(signal)) },
      });
      const actor = createActor(machine, {
        clock: this.deps.clock,
        input: { policy: this.deps.policy },
      });
      let settled = false;
      const finish = (value: OpOutcome | null) => {
        if (settled) return;
        settled = true;
        this.running.delete(abort);
        sub.unsubscribe();
        resolve(value);
      };
      const abort = () => {
        finish(null);
        actor.stop();
      };
      const sub = actor.subscribe({
        complete: () => {
          const snapshot = actor.getSnapshot();
          finish(snapshot.status === "done" ? snapshot.output ?? null : null);
        },
        error: (err: unknown) =>
          finish({ type: "unreachable", lastError: String(err), attempts: 0 }),
      });
      this.running.add(abort);
      actor.start();
    });
  }

  private async performAuthorize(
    paymentId: string,
    key: string,
    token: string | null,
  ): Promise<Result<Payment>> {
    const p = this.store.get(paymentId);
    const outcome = await this.runOp((signal) =>
      this.deps.hw.gateway.authorize(authorizeRequest(p, key, token), { signal })
    );
    if (!outcome) return stoppedResult;
    const now = this.deps.clock.now();
    const row = this.store.atomically(() => {
      switch (outcome.type) {
        case "approved":
          this.store.finishOp(key, "APPROVED", outcome.attempts, outcome.approval.response);
          return this.store.update(paymentId, {
            status: "AUTHORIZED",
            transactionId: outcome.approval.transactionId,
            last4: outcome.approval.last4,
            gatewayResponse: outcome.approval.response,
            processedAt: now,
          });
        case "declined":
          this.store.finishOp(key, "DECLINED", outcome.attempts, outcome.decline.response);
          return this.store.update(paymentId, {
            status: "FAILED",
            last4: outcome.decline.last4,
            gatewayResponse: {
              ...outcome.decline.response,
              code: outcome.decline.code,
              message: outcome.decline.message,
            },
            processedAt: now,
          });
        case "unreachable":
          this.store.finishOp(key, "UNREACHABLE", outcome.attempts, {
            lastError: outcome.lastError,
          });
          return this.store.update(paymentId, {
            status: "PENDING",
            gatewayResponse: {
              error: "gateway_unreachable",
              message: outcome.lastError,
              attempts: outcome.attempts,
            },
          });
      }
    });
    this.deps.events.changed(row);
    this.deps.log.log(outcome.type === "approved" ? "info" : "warn", "authorization finished", {
      orderId: row.orderId,
      paymentId,
      status: row.status,
      last4: row.last4,
      attempts: outcome.attempts,
    });
    if (outcome.type === "unreachable") {
      this.deps.events.alert(
        row.orderId,
        "WARNING",
        `Payment of order "${row.orderId}" is PENDING: the gateway gave no answer in ${outcome.attempts} attempts (${outcome.lastError})`,
      );
    }
    return ok(toPayment(row));
  }

  private async performCapture(paymentId: string, key: string): Promise<Result<Payment>> {
    const p = this.store.get(paymentId);
    if (!p.transactionId) throw new Error(`Payment "${paymentId}" has no authorization to capture`);
    const transactionId = p.transactionId;
    const outcome = await this.runOp((signal) =>
      this.deps.hw.gateway.capture({
        idempotencyKey: key,
        orderId: p.orderId,
        transactionId,
        amountCents: p.amountCents,
      }, { signal })
    );
    if (!outcome) return stoppedResult;
    if (outcome.type === "unreachable") return this.owed(p, key, "Capture", outcome);
    const now = this.deps.clock.now();
    const row = this.store.atomically(() => {
      if (outcome.type === "approved") {
        this.store.finishOp(key, "APPROVED", outcome.attempts, outcome.approval.response);
        return this.store.update(paymentId, {
          status: "COMPLETED",
          gatewayResponse: outcome.approval.response,
          processedAt: now,
        });
      }
      this.store.finishOp(key, "DECLINED", outcome.attempts, outcome.decline.response);
      return this.store.update(paymentId, {
        status: "FAILED",
        gatewayResponse: { ...outcome.decline.response, code: outcome.decline.code },
        processedAt: now,
      });
    });
    this.deps.events.changed(row);
    this.deps.log.log("info", "capture finished", {
      orderId: row.orderId,
      paymentId,
      status: row.status,
      last4: row.last4,
      attempts: outcome.attempts,
    });
    if (outcome.type === "declined") {
      this.deps.events.alert(
        row.orderId,
        "CRITICAL",
        `Capture of order "${row.orderId}" was declined (${outcome.decline.code}): the pizza was handed over unpaid`,
      );
    }
    return ok(toPayment(row));
  }

  private async performVoid(paymentId: string, key: string): Promise<Result<Payment>> {
    let p = this.store.get(paymentId);
    if (!p.transactionId) {
      // The authorization never answered: ask again under its own key. The
      // gateway replays what it did, or declines a key it never saw.
      const auth = this.store.opOf(paymentId, "AUTHORIZE");
      const probe = auth
        ? await this.runOp((signal) =>
          this.deps.hw.gateway.authorize(authorizeRequest(p, auth.idempotencyKey, null), {
            signal,
          })
        )
        : null;
      if (auth && !probe) return stoppedResult;
      if (probe?.type === "unreachable") return this.owed(p, key, "Void", probe);
      if (!probe || probe.type === "declined") {
        return this.finishVoid(p, key, probe?.attempts ?? 0, {
          nothingHeld: true,
          code: probe?.type === "declined" ? probe.decline.code : "no_authorization",
        });
      }
      p = this.store.update(paymentId, {
        transactionId: probe.approval.transactionId,
        last4: probe.approval.last4,
      });
    }
    const transactionId = p.transactionId!;
    const outcome = await this.runOp((signal) =>
      this.deps.hw.gateway.void({ idempotencyKey: key, orderId: p.orderId, transactionId }, {
        signal,
      })
    );
    if (!outcome) return stoppedResult;
    if (outcome.type === "unreachable") return this.owed(p, key, "Void", outcome);
    if (outcome.type === "declined") {
      // Typically an authorization that already expired: nothing is held either way.
      this.deps.log.log("warn", "void declined", {
        orderId: p.orderId,
        code: outcome.decline.code,
      });
      return this.finishVoid(p, key, outcome.attempts, {
        ...outcome.decline.response,
        code: outcome.decline.code,
      });
    }
    return this.finishVoid(p, key, outcome.attempts, outcome.approval.response);
  }

  private finishVoid(
    p: PaymentRow,
    key: string,
    attempts: number,
    response: Record<string, unknown>,
  ): Result<Payment> {
    const row = this.store.atomically(() => {
      this.store.finishOp(key, "APPROVED", attempts, response);
      return this.store.update(p.paymentId, {
        status: "VOIDED",
        gatewayResponse: response,
        processedAt: this.deps.clock.now(),
      });
    });
    this.deps.events.changed(row);
    this.deps.log.log("info", "authorization voided", {
      orderId: row.orderId,
      paymentId: row.paymentId,
      last4: row.last4,
    });
    return ok(toPayment(row));
  }

  /** Pays out change or returns cash, as journaled under `key`. */
  private async performPayout(paymentId: string, key: string): Promise<Result<Payment>> {
    const op = this.store.op(key);
    if (!op) throw new Error(`Payout "${key}" is not in the journal`);
    const why: PayoutReason = op.op === "CHANGE" ? "CHANGE" : "RETURN";
    const p = this.store.get(paymentId);
    const outcome = await this.runOp(async (signal) => {
      await this.deps.hw.cash.payOut({
        idempotencyKey: key,
        orderId: p.orderId,
        amountCents: op.amountCents,
        why,
      }, { signal });
      return { type: "approved", transactionId: key, last4: null, response: {} };
    });
    if (!outcome) return stoppedResult;
    if (outcome.type !== "approved") {
      return this.owed(p, key, why === "CHANGE" ? "Change payout" : "Cash return", outcome);
    }
    const row = this.store.atomically(() => {
      this.store.finishOp(key, "APPROVED", outcome.attempts);
      return why === "CHANGE" ? this.store.get(paymentId) : this.store.update(paymentId, {
        status: "VOIDED",
        processedAt: this.deps.clock.now(),
      });
    });
    this.deps.events.cashOut(p.orderId, op.amountCents, why);
    if (why === "RETURN") this.deps.events.changed(row);
    this.deps.log.log("info", "cash paid out", {
      orderId: p.orderId,
      paymentId,
      amountCents: op.amountCents,
      why,
    });
    return ok(toPayment(row));
  }

  /** An operation that could not be done now: it stays owed and is re-issued later. */
  private owed(p: PaymentRow, key: string, what: string, outcome: OpOutcome): Result<Payment> {
    const lastError = outcome.type === "unreachable" ? outcome.lastError : outcome.type;
    this.store.finishOp(key, null, outcome.attempts, { lastError });
    const message =
      `${what} of order "${p.orderId}" got no answer in ${outcome.attempts} attempts (${lastError}); it stays owed and is retried`;
    this.deps.log.log("warn", "operation owed", { orderId: p.orderId, key, lastError });
    this.deps.events.alert(p.orderId, "WARNING", message);
    return fail("UNAVAILABLE", message);
  }
}

/** The gateway request that authorizes payment `p` under `key`; `token` null re-asks. */
function authorizeRequest(p: PaymentRow, key: string, token: string | null): AuthorizeRequest {
  return {
    idempotencyKey: key,
    orderId: p.orderId,
    amountCents: p.amountCents,
    method: p.method === "MOBILE_PAY" ? "MOBILE_PAY" : "CARD",
    token,
  };
}

function flightKey(p: PaymentRow, flight: Flight): string {
  return `${p.paymentId}:${flight}`;
}

function flightOf(op: OpRow): Flight | null {
  switch (op.op) {
    case "AUTHORIZE":
      return "authorize";
    case "CAPTURE":
      return "capture";
    case "VOID":
    case "RETURN":
      return "void";
    case "CHANGE":
      return "change";
    default:
      return null;
  }
}
