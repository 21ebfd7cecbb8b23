/**
 * Payments: card and mobile pre-authorization with capture after pickup, cash
 * in escrow (seed 003 §3.5, §6.4; seed 000 cash flow). Every operation is keyed
 * by the order id: a repeat returns the first result.
 */
import { z } from "zod";
import { defineCommand, defineEvent, OrderId } from "./define.ts";
import { Cents, Payment } from "./entities.ts";

/** A tokenised card or wallet; never a card number. */
export const PaymentToken = z.string().regex(
  /^tok_[A-Za-z0-9_]{1,60}$/,
  "must be a payment token like tok_visa",
);

/**
 * Authorizes `amountCents` on a card or wallet token. Decline is final (FAILED);
 * network or gateway errors retry 3 times with backoff, then PENDING.
 * CONFLICT while the card reader is offline (cash only).
 */
export const authorize = defineCommand("payment", "authorize", {
  orderId: OrderId,
  amountCents: Cents.min(1),
  method: z.enum(["CARD", "MOBILE_PAY"]),
  token: PaymentToken,
}, Payment);

/**
 * One bill or coin into the cash acceptor for `orderId`. Denominations outside
 * the accepted set are refused (BAD_REQUEST) and handed back. Once enough is in,
 * the payment is AUTHORIZED (escrowed) and `changeCents` paid out. A request
 * with the `requestKey` of a bill already in (default: the envelope id) counts
 * nothing and returns the payment.
 */
export const insertCash = defineCommand("payment", "insert_cash", {
  orderId: OrderId,
  amountCents: Cents.min(1),
  denominationCents: Cents.min(1),
  /** The kiosk's idempotency key of this bill, so a retried insert counts once. */
  requestKey: z.string().min(1).max(128).optional(),
}, Payment);

/** Captures the card authorization or keeps the escrowed cash: the pizza was taken. */
export const settle = defineCommand("payment", "settle", { orderId: OrderId }, Payment);

/**
 * Voids the authorization or returns the escrowed or partly inserted cash.
 * At most once per order; CONFLICT after settle.
 */
export const refund = defineCommand("payment", "refund", {
  orderId: OrderId,
  reason: z.string().min(1).max(200),
}, Payment);

/** The payment of `orderId`; NOT_FOUND when none. */
export const status = defineCommand("payment", "status", { orderId: OrderId }, Payment);

/** Whether cards can be taken now. */
export const ReaderStatus = z.object({
  cardReaderOnline: z.boolean(),
  acceptedCents: z.array(Cents),
});

/** Reports the card reader and cash acceptor. */
export const reader = defineCommand("payment", "reader", {}, ReaderStatus);

/** A payment changed status. */
export const changed = defineEvent("payment", "changed", { payment: Payment });

/** The card reader went offline or came back. */
export const readerChanged = defineEvent("payment", "reader", {
  cardReaderOnline: z.boolean(),
});

/** Cash paid out to the customer (change or a return). */
export const cashOut = defineEvent("payment", "cash_out", {
  orderId: OrderId,
  amountCents: Cents,
  why: z.enum(["CHANGE", "RETURN"]),
});
