/**
 * The payment actor: serves `protocol/payment.ts` on the bus, follows the card
 * reader, and recovers owed operations from the journal on start.
 *
 * @example
 * ```ts
 * const payment = startPayment(ctx, { gateway, reader, cash }, { journal });
 * await ctx.bus.request(authorize, { orderId, amountCents: 750, method: "CARD", token: "tok_visa" });
 * await payment.stop();
 * ```
 */
import { createActor, fromCallback } from "xstate";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import type { Journal } from "../../journal/journal.ts";
import { every } from "../../clock/clock.ts";
import { alert } from "../../protocol/common.ts";
import { ok } from "../../protocol/define.ts";
import * as payment from "../../protocol/payment.ts";
import {
  defaultRetryPolicy,
  paymentServiceMachine,
  type ReaderEvent,
  type RetryPolicy,
} from "./machine.ts";
import { type PaymentHardware, PaymentService } from "./service.ts";
import { PaymentStore, toPayment } from "./store.ts";

export type { PaymentHardware } from "./service.ts";
export { defaultRetryPolicy, type RetryPolicy } from "./machine.ts";

/** Options of {@linkcode startPayment}. */
export interface PaymentOptions {
  /** The machine journal; the actor migrates and owns its `payment_*` tables. */
  journal: Journal;
  /** Retry policy of gateway calls and payouts (default: seed 003 §6.4). */
  retry?: RetryPolicy;
  /** How often owed captures, voids and payouts are re-issued, in clock ms (default 60 s). */
  sweepMs?: number;
}

/**
 * Starts the payment actor on `ctx.bus` with its hardware: recovers what the
 * journal says is owed, then serves authorize, insert_cash, settle, refund,
 * status and reader, and publishes `changed`, `reader`, `cash_out` and alerts.
 */
export function startPayment(
  ctx: ActorContext,
  hw: PaymentHardware,
  options: PaymentOptions,
): RunningActor {
  const log = ctx.log.child("payment");
  let stopped = false;
  const bus = ctx.bus;

  const service = createActor(
    paymentServiceMachine.provide({
      actors: {
        readerStream: fromCallback<ReaderEvent>(({ sendBack }) => {
          const off = hw.reader.onChange((online) =>
            sendBack({ type: online ? "READER.ONLINE" : "READER.OFFLINE" })
          );
          // A change between the first reading and this subscription is not lost.
          sendBack({ type: hw.reader.online() ? "READER.ONLINE" : "READER.OFFLINE" });
          return off;
        }),
      },
      guards: { readerOnline: () => hw.reader.online() },
      actions: {
        announceReader: (_, params) => {
          log.log(params.online ? "info" : "warn", "card reader changed", {
            cardReaderOnline: params.online,
          });
          if (!stopped) bus.publish(payment.readerChanged, { cardReaderOnline: params.online });
        },
      },
    }),
    { clock: ctx.clock },
  );

  const acceptedCents = () => {
    const hardware = hw.cash.acceptedCents();
    return ctx.config.acceptedCents.filter((c) => hardware.includes(c)).sort((a, b) => a - b);
  };
  const cardsAccepted = () => service.getSnapshot().hasTag("cards");

  const payments = new PaymentService({
    store: new PaymentStore(options.journal, () => ctx.clock.now()),
    hw,
    clock: ctx.clock,
    random: ctx.random,
    log,
    policy: options.retry ?? defaultRetryPolicy,
    acceptedCents,
    cardsAccepted,
    events: {
      changed: (row) => {
        if (!stopped) bus.publish(payment.changed, { payment: toPayment(row) }, row.orderId);
      },
      cashOut: (orderId, amountCents, why) => {
        if (!stopped) bus.publish(payment.cashOut, { orderId, amountCents, why }, orderId);
      },
      alert: (orderId, severity, message) => {
        if (stopped) return;
        bus.publish(alert.payment, {
          alertId: ctx.random.uuid(),
          type: "PAYMENT_ISSUE",
          severity,
          message,
          resolved: false,
          createdAt: ctx.clock.now(),
          resolvedAt: null,
          orderId,
        }, orderId);
      },
    },
  });

  service.start();
  // Recovery first, so a request for an order being recovered joins it.
  payments.sweep();
  const stopSweeping = every(ctx.clock, options.sweepMs ?? 60_000, () => {
    payments.sweep();
    // The reader's state once more: a change announced while the bus was cut
    // would otherwise leave the supervisor on cash only (or on cards) for good.
    if (!stopped) bus.publish(payment.readerChanged, { cardReaderOnline: cardsAccepted() });
  });

  const unsubscribe = [
    bus.serve(payment.authorize, (req) =>
      payments.authorize({
        orderId: req.orderId,
        amountCents: req.amountCents,
        method: req.method,
        token: req.token,
      })),
    bus.serve(payment.insertCash, (req) =>
      payments.insertCash({
        orderId: req.orderId,
        amountCents: req.amountCents,
        denominationCents: req.denominationCents,
        requestId: req.requestKey ?? req.id,
      })),
    bus.serve(payment.settle, (req) => payments.settle(req.orderId)),
    bus.serve(payment.refund, (req) => payments.refund(req.orderId, req.reason)),
    bus.serve(payment.status, (req) => payments.status(req.orderId)),
    bus.serve(
      payment.reader,
      () => ok({ cardReaderOnline: cardsAccepted(), acceptedCents: acceptedCents() }),
    ),
  ];

  return {
    state: () => stateString(service.getSnapshot().value),
    alive: () => !stopped && service.getSnapshot().status === "active",
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const off of unsubscribe) off();
      stopSweeping();
      await payments.stop();
      service.stop();
    },
  };
}
