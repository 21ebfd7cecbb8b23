/**
 * The simulated customers: they arrive as a Poisson process with lunch and
 * dinner peaks, choose from the menu by popularity, pay by card, wallet or
 * cash, wait at the kiosk, and come back for their pizza with its code — some
 * mistype it, some never come back. They use the kiosk's commands over the bus
 * (protocol/order.ts), exactly as the machine's kiosk page does, with an
 * idempotency key per order and per payment attempt (per bill for cash) that a
 * resend repeats.
 */
import type { TypedBus } from "../../bus/typed_bus.ts";
import { type Clock, sleep } from "../../clock/clock.ts";
import { exponential, type Random } from "../../random/random.ts";
import type { CommandDef, Result } from "../../protocol/define.ts";
import * as orders from "../../protocol/order.ts";
import type { Payment } from "../../protocol/entities.ts";
import type { Customers } from "../scenario.ts";
import { weighted } from "./streams.ts";

/** How the kiosk treats a request that got no answer. */
export interface KioskPolicy {
  /**
   * Idempotence workload: resend every request with the same payload and
   * idempotency key after a timeout (cash inserts included), as a kiosk that
   * only knows it got no answer.
   */
  resendAll: boolean;
  /** Deadline of one request, in clock ms (shorter in the idempotence workload). */
  timeoutMs: number;
  /** Resends after a timeout. */
  resends: number;
}

/** What the world records of one customer. */
export interface CustomerRecord {
  id: number;
  arrivedAtMs: number;
  pizzaId: string | null;
  method: string | null;
  orderId: string | null;
  /** The idempotency key of the customer's one order request, once sent. */
  orderKey: string | null;
  /** Whether the machine refused that request outright (sold out, closed): no order. */
  orderRefused: boolean;
  /** Cents of the bills the customer really inserted (each bill once). */
  insertedCents: number;
  noShow: boolean;
  outcome: string | null;
  leftAtMs: number | null;
  /** When the order was paid, when the pizza was in the customer's hands. */
  paidAtMs: number | null;
  pickedUpAtMs: number | null;
  /** When the right code was first refused while the order was READY. */
  refusedAtMs: number | null;
  /** When the machine accepted the customer's code and opened the door. */
  codeAcceptedAtMs: number | null;
}

/** A customer who has just arrived and done nothing yet. */
export function newCustomerRecord(id: number, arrivedAtMs: number): CustomerRecord {
  return {
    id,
    arrivedAtMs,
    pizzaId: null,
    method: null,
    orderId: null,
    orderKey: null,
    orderRefused: false,
    insertedCents: 0,
    noShow: false,
    outcome: null,
    leftAtMs: null,
    paidAtMs: null,
    pickedUpAtMs: null,
    refusedAtMs: null,
    codeAcceptedAtMs: null,
  };
}

/** Where customers report what they do (the world's event log). */
export type CustomerEventSink = (kind: string, fields: Record<string, unknown>) => void;

/** Options of {@linkcode startCustomers}. */
export interface CustomerOptions {
  /** The kiosk's bus connection (its own TypedBus). */
  kiosk: TypedBus;
  clock: Clock;
  arrivals: Random;
  behaviour: Random;
  profile: Customers;
  acceptedCents: number[];
  utcOffsetMin: number;
  /** Customers arrive from now until this clock time. */
  untilMs: number;
  policy: KioskPolicy;
  event: CustomerEventSink;
  /** Called whenever a customer leaves or the set of waiting customers changes. */
  onChange?: () => void;
}

/** The customers of a run. */
export interface CustomerCrowd {
  readonly records: CustomerRecord[];
  /** Customers still at or coming back to the machine. */
  active(): number;
  /** Stops new arrivals (customers already there carry on). */
  stopArrivals(): void;
  /** Sends one probe customer who pays by card and picks up at once; resolves with the outcome. */
  probe(pizzaId: string): Promise<CustomerRecord>;
}

const hourMs = 3_600_000;

/** The arrival rate per hour at `nowMs` under `profile`. */
export function arrivalRatePerH(profile: Customers, nowMs: number, utcOffsetMin: number): number {
  const local = ((nowMs + utcOffsetMin * 60_000) % 86_400_000 + 86_400_000) % 86_400_000;
  const hour = Math.floor(local / hourMs);
  let factor = 1;
  for (const p of profile.peaks) {
    const inPeak = p.fromH <= p.toH
      ? hour >= p.fromH && hour <= p.toH
      : hour >= p.fromH || hour <= p.toH;
    if (inPeak) factor = Math.max(factor, p.factor);
  }
  return profile.baseRatePerH * factor;
}

/** A watching customer asks again after this many poll periods when no update came. */
const watchFallbackPolls = 4;

/** Starts the arrival process; customers run as promise chains on `clock`. */
export function startCustomers(o: CustomerOptions): CustomerCrowd {
  const { clock, kiosk, profile, policy } = o;
  const records: CustomerRecord[] = [];
  let active = 0;
  let arriving = true;
  let timer: unknown = null;
  const maxRate = profile.baseRatePerH *
    Math.max(1, ...profile.peaks.map((p) => p.factor));
  const r = o.behaviour;

  /** A request with the kiosk's deadline and, when told, resends after a timeout. */
  const call = async <Q, R>(
    def: CommandDef<Q, R>,
    payload: Q,
    options: { timeoutMs?: number; resend?: boolean } = {},
  ): Promise<Result<R>> => {
    const resends = (options.resend ?? policy.resendAll) ? policy.resends : 0;
    let result: Result<R> = { ok: false, error: { code: "TIMEOUT", message: "not sent" } };
    for (let attempt = 0; attempt <= resends; attempt++) {
      result = await kiosk.request(def, payload, {
        timeoutMs: options.timeoutMs ?? policy.timeoutMs,
      });
      if (result.ok || result.error.code !== "TIMEOUT") return result;
    }
    return result;
  };

  /** A fresh idempotency key, unique in the run, for one request that acts. */
  let keysIssued = 0;
  const newKey = () => `kiosk-${++keysIssued}`;

  const leave = (c: CustomerRecord, outcome: string) => {
    c.outcome = outcome;
    c.leftAtMs = clock.now();
    o.event("customer.leave", { customer: c.id, orderId: c.orderId, outcome });
  };

  /**
   * Watches the order until `done` accepts its status or it ends; null when
   * unreachable. Like the kiosk's live view, an update of the order wakes it at
   * once; the poll is only the fallback for an update lost on the way.
   */
  const watch = async (
    orderId: string,
    done: (s: string) => boolean,
    limitMs: number,
  ): Promise<orders.OrderView | null> => {
    const until = clock.now() + limitMs;
    let last: orders.OrderView | null = null;
    let wake = new AbortController();
    const unsubscribe = kiosk.subscribe(orders.updated, kiosk.machineId, (m) => {
      if (m.order.orderId === orderId) wake.abort();
    });
    try {
      while (clock.now() < until) {
        const g = await call(orders.get, { orderId }, { resend: true });
        if (g.ok) {
          last = g.value;
          if (
            done(g.value.status) ||
            ["DISPENSED", "REFUNDED", "CANCELLED"].includes(g.value.status)
          ) {
            return g.value;
          }
        }
        const pollMs = profile.pollEveryS * 1000 * watchFallbackPolls;
        await sleep(clock, Math.round(pollMs * (0.75 + 0.5 * r.float())), wake.signal)
          .catch(() => {});
        wake = new AbortController();
      }
      return last;
    } finally {
      unsubscribe();
    }
  };

  const payCard = async (
    c: CustomerRecord,
    orderId: string,
    method: "CARD" | "MOBILE_PAY",
    token: string,
  ): Promise<Result<Payment>> => {
    o.event("customer.pay", { customer: c.id, orderId, method, token });
    // The gateway may take its retries: the order's own deadline is 90 s.
    return await call(
      orders.pay,
      { orderId, method, paymentDetails: { token }, idempotencyKey: newKey() },
      { timeoutMs: Math.max(policy.timeoutMs, 120_000) },
    );
  };

  /** Bills and coins for `priceCents`, as a customer's wallet holds them. */
  const wallet = (priceCents: number): number[] => {
    const accepted = [...o.acceptedCents].sort((a, b) => a - b);
    const bills: number[] = [];
    let due = priceCents;
    while (due > 0 && bills.length < 20) {
      const fits = accepted.filter((d) => d <= due);
      const bigger = accepted.filter((d) => d > due);
      const d = fits.length > 0 && (bigger.length === 0 || r.float() < 0.7)
        ? fits[fits.length - 1]!
        : bigger[0] ?? accepted[accepted.length - 1]!;
      bills.push(d);
      due -= d;
    }
    return bills;
  };

  const payCash = async (c: CustomerRecord, orderId: string, priceCents: number) => {
    let last: Result<Payment> = { ok: false, error: { code: "TIMEOUT", message: "no bill" } };
    for (const bill of wallet(priceCents)) {
      c.insertedCents += bill;
      o.event("customer.cash", { customer: c.id, orderId, cents: bill });
      last = await call(orders.pay, {
        orderId,
        method: "CASH",
        paymentDetails: { denominationCents: bill },
        idempotencyKey: newKey(),
      });
      if (!last.ok) {
        o.event("customer.cash_refused", { customer: c.id, orderId, code: last.error.code });
        return last;
      }
      await sleep(clock, 1500 + r.int(0, 2500));
    }
    return last;
  };

  const pickup = async (c: CustomerRecord, orderId: string, code: string, sure: boolean) => {
    if (!sure && r.float() < profile.mistypeShare) {
      const wrongs = r.int(1, 2);
      for (let i = 0; i < wrongs; i++) {
        let wrong = code;
        while (wrong === code) wrong = String(r.int(0, 9999)).padStart(4, "0");
        const res = await call(orders.pickup, { orderId, pickupCode: wrong }, { resend: true });
        o.event("customer.mistype", {
          customer: c.id,
          orderId,
          ok: res.ok,
          ...(res.ok ? { attemptsLeft: res.value.attemptsLeft } : { code: res.error.code }),
        });
        await sleep(clock, 3000 + r.int(0, 4000));
      }
    }
    // A customer with the right code stays until the door opens or the order ends.
    const until = clock.now() + 45 * 60_000;
    while (clock.now() < until) {
      const res = await call(orders.pickup, { orderId, pickupCode: code }, { resend: true });
      o.event("customer.pickup", {
        customer: c.id,
        orderId,
        ok: res.ok && res.value.success,
        ...(res.ok ? { message: res.value.message } : { code: res.error.code }),
      });
      if (res.ok && res.value.success) {
        c.codeAcceptedAtMs = clock.now();
        const end = await watch(orderId, (s) => s === "DISPENSED", 5 * 60_000);
        if (end?.status === "DISPENSED") c.pickedUpAtMs = clock.now();
        return end?.status ?? "UNKNOWN";
      }
      if (res.ok && res.value.attemptsLeft <= 0) return "LOCKED";
      // The door may be busy or the order ended meanwhile.
      const g = await call(orders.get, { orderId }, { resend: true });
      if (g.ok && ["DISPENSED", "REFUNDED", "CANCELLED"].includes(g.value.status)) {
        return g.value.status;
      }
      if (res.ok && g.ok && g.value.status === "READY") c.refusedAtMs ??= clock.now();
      await sleep(clock, 10_000 + r.int(0, 10_000));
    }
    return "GAVE_UP";
  };

  const visit = async (c: CustomerRecord, forced?: { pizzaId: string }) => {
    const menu = await call(orders.menu, {}, { resend: true });
    if (!menu.ok) return leave(c, `kiosk unavailable (${menu.error.code})`);
    const available = menu.value.pizzas.filter((p) => p.available);
    const pizzaId = forced?.pizzaId ?? weighted(
      r,
      available.map((p) => [p.pizzaId, profile.popularity[p.pizzaId] ?? 1] as const),
    );
    if (!pizzaId) return leave(c, "sold out");
    c.pizzaId = pizzaId;
    const pay = profile.payment;
    let method = forced ? "card" : weighted(
      r,
      [
        ["card", pay.card],
        ["mobile", pay.mobile],
        ["cash", pay.cash],
        ["declined", pay.declined],
        ["timeout", pay.timeout],
      ] as const,
    )!;
    c.method = method;
    c.orderKey = newKey();
    const created = await call(orders.create, { pizzaId, idempotencyKey: c.orderKey });
    if (!created.ok) {
      c.orderRefused = ["CONFLICT", "NOT_FOUND", "BAD_REQUEST"].includes(created.error.code);
      return leave(c, `not created (${created.error.code})`);
    }
    const { orderId, pickupCode, totalAmountCents, estimatedTimeMs } = created.value;
    c.orderId = orderId;
    o.event("customer.order", { customer: c.id, orderId, pizzaId, method, estimatedTimeMs });
    if (!forced && estimatedTimeMs > profile.maxWaitMin * 60_000) {
      const cancel = await call(orders.cancel, {
        orderId,
        reason: "the wait is too long",
        by: "CUSTOMER",
      }, { resend: true });
      o.event("customer.cancel", { customer: c.id, orderId, ok: cancel.ok });
      return leave(c, "wait too long");
    }
    await sleep(clock, 2000 + r.int(0, 6000));

    let paid = null as Result<Payment> | null;
    for (let tries = 0; tries < 3; tries++) {
      if (method === "cash") paid = await payCash(c, orderId, totalAmountCents);
      else if (method === "declined") {
        paid = await payCard(c, orderId, "CARD", "tok_chargeDeclined");
      } else if (method === "timeout") paid = await payCard(c, orderId, "CARD", "tok_timeout");
      else if (method === "mobile") paid = await payCard(c, orderId, "MOBILE_PAY", "tok_visa");
      else {paid = await payCard(
          c,
          orderId,
          "CARD",
          r.float() < 0.5 ? "tok_visa" : "tok_mastercard",
        );}
      if (paid.ok && paid.value.status === "AUTHORIZED") break;
      if (paid.ok && paid.value.status === "FAILED") {
        if (r.float() < profile.giveUpOnDeclineShare) break;
        method = "card";
        paid = null;
        continue;
      }
      if (paid.ok && paid.value.status === "PENDING" && method !== "cash") break;
      if (!paid.ok && paid.error.code === "CONFLICT" && /cash only/i.test(paid.error.message)) {
        if (c.insertedCents > 0 || r.float() < 0.3) break;
        method = "cash";
        paid = null;
        continue;
      }
      // A timeout or an outage: ask the order where the payment stands.
      const g = await call(orders.get, { orderId }, { resend: true });
      if (g.ok && !["PENDING", "PAYMENT_PROCESSING"].includes(g.value.status)) break;
      if (g.ok && g.value.status === "PAYMENT_PROCESSING") {
        await watch(orderId, (s) => s !== "PAYMENT_PROCESSING", 3 * 60_000);
        break;
      }
      if (method === "cash") break;
      paid = null;
    }
    const state = await call(orders.get, { orderId }, { resend: true });
    const status = state.ok ? state.value.status : "UNKNOWN";
    if (!["PAID", "PREPARING", "READY", "PAYMENT_PENDING", "PAYMENT_PROCESSING"].includes(status)) {
      if (status === "PENDING") {
        const cancel = await call(orders.cancel, {
          orderId,
          reason: "customer gave up paying",
          by: "CUSTOMER",
        }, { resend: true });
        o.event("customer.cancel", { customer: c.id, orderId, ok: cancel.ok });
      }
      return leave(c, `not paid (${status})`);
    }
    c.paidAtMs = clock.now();
    if (!forced && r.float() < profile.noShowShare) {
      c.noShow = true;
      return leave(c, "no-show");
    }
    const ready = await watch(orderId, (s) => s === "READY", 3 * hourMs);
    if (ready?.status !== "READY") return leave(c, `never ready (${ready?.status ?? "UNKNOWN"})`);
    const d = profile.pickupDelayS;
    const delayS = forced ? d.minS : Math.min(d.maxS, Math.max(d.minS, exponential(r, d.meanS)));
    await sleep(clock, Math.round(delayS * 1000));
    const end = await pickup(c, orderId, pickupCode, forced !== undefined);
    leave(c, end === "DISPENSED" ? "served" : `pickup ended ${end}`);
  };

  const arrive = (forced?: { pizzaId: string }): Promise<CustomerRecord> => {
    const c = newCustomerRecord(records.length + 1, clock.now());
    records.push(c);
    active++;
    o.event("customer.arrive", { customer: c.id, ...(forced ? { probe: true } : {}) });
    return visit(c, forced)
      .catch((err: unknown) => leave(c, `kiosk error: ${String(err)}`))
      .then(() => {
        active--;
        o.onChange?.();
        return c;
      });
  };

  /** Thinning: candidates at the peak rate, each kept with probability rate/peak. */
  const next = () => {
    if (!arriving || maxRate <= 0) return;
    const gapMs = Math.max(1, Math.round(exponential(o.arrivals, hourMs / maxRate)));
    if (clock.now() + gapMs >= o.untilMs) return;
    timer = clock.setTimeout(() => {
      timer = null;
      const rate = arrivalRatePerH(profile, clock.now(), o.utcOffsetMin);
      if (o.arrivals.float() * maxRate < rate) void arrive();
      next();
    }, gapMs);
  };
  next();

  return {
    records,
    active: () => active,
    stopArrivals() {
      arriving = false;
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
    },
    probe: (pizzaId) => arrive({ pizzaId }),
  };
}
