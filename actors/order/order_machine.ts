/**
 * One order's life as an XState machine: the statuses of seed 003 §3.3 and
 * the cooking flow of §5.3. The machine only decides; the bus calls it makes
 * are placeholders that the host provides, and every state that touches money
 * or hardware is journaled on entry, before its invoke starts.
 */
import { assign, fromPromise, setup } from "xstate";
import type { CookingSession, OrderStatus, Payment } from "../../protocol/entities.ts";
import type { ReplyError } from "../../protocol/define.ts";
import type { OrderRecord, OrderStage } from "./order_store.ts";

/** Wrong codes after which pickup locks. */
export const maxWrongCodes = 5;

/** A bus call that came back with an error reply. */
export class StepError extends Error {
  /** Creates the error from a reply error. */
  constructor(readonly reply: ReplyError) {
    super(reply.message);
    this.name = "StepError";
  }
}

/** Who cancels. */
export type CancelBy = "CUSTOMER" | "TECHNICIAN" | "SUPERVISOR";

/** Input of an order actor: its journaled record (new or recovered). */
export interface OrderInput {
  record: OrderRecord;
  /** The clock's time, for the instants the order records. */
  now: () => number;
  /** Milliseconds left of the READY hold for a recovered READY order. */
  readyTimeoutMs?: number;
}

/** An order actor's context. */
export interface OrderContext {
  record: OrderRecord;
  /** The last refused step (declined card, bad bill), for the kiosk. */
  lastError: ReplyError | null;
  /** Outcome of the last pickup attempt. */
  pickupResult: { success: boolean; message: string; attemptsLeft: number } | null;
  cancelRequest: { reason: string; by: CancelBy } | null;
  readyTimeoutMs: number;
  session: CookingSession | null;
  now: () => number;
}

/** What an order actor hears. */
export type OrderEvent =
  | { type: "PAY"; method: "CARD" | "MOBILE_PAY"; token: string }
  | { type: "INSERT_CASH"; denominationCents: number }
  | { type: "START" }
  | { type: "OVEN_GRANTED" }
  | { type: "BAY_GRANTED" }
  | { type: "PICKUP_CODE"; code: string }
  | { type: "OPEN_DOOR" }
  | { type: "DOOR_CLOSED" }
  | { type: "TAKEN" }
  | { type: "CANCEL"; reason: string; by: CancelBy };

const readyHoldMs = 30 * 60_000;

function notProvided(name: string) {
  return fromPromise<never, unknown>(() => Promise.reject(new Error(`${name} not provided`)));
}

function errorOf(error: unknown): ReplyError {
  return error instanceof StepError
    ? error.reply
    : { code: "INTERNAL", message: error instanceof Error ? error.message : String(error) };
}

/** A preparation step that failed: the order is refunded, naming the step and why. */
function refundWhenFailed(step: string) {
  return {
    target: "#order.refunding",
    actions: {
      type: "setReason",
      params: ({ event }: { event: { error: unknown } }) => ({
        reason: `${step} failed: ${errorOf(event.error).message}`,
      }),
    },
  } as const;
}

/**
 * The READY hold ended and the arm did not report the pizza taken: refund and
 * call staff; when the arm could not be asked, the reason says why.
 */
function abandoned() {
  const reason = "pizza not collected within 30 minutes; discarded";
  return {
    target: "#order.refunding",
    actions: [
      {
        type: "setReason",
        params: ({ event }: { event: object }) => ({
          reason: "error" in event
            ? `${reason} (the arm did not confirm: ${errorOf(event.error).message})`
            : reason,
        }),
      },
      {
        type: "alert",
        params: ({ context }: { context: OrderContext }) => ({
          type: "PIZZA_ABANDONED" as const,
          message:
            `Pizza of order ${context.record.order.orderId} was not collected within 30 minutes: remove it from the pickup area`,
        }),
      },
    ],
  } as const;
}

type OrderId = { orderId: string };

/** The order machine; its bus calls come in with `.provide({ actors })`. */
export const orderMachine = setup({
  types: {
    context: {} as OrderContext,
    events: {} as OrderEvent,
    input: {} as OrderInput,
  },
  actors: {
    authorize: notProvided("authorize") as unknown as ReturnType<
      typeof fromPromise<Payment, OrderId & { amountCents: number; method: string; token: string }>
    >,
    insertCash: notProvided("insertCash") as unknown as ReturnType<
      typeof fromPromise<Payment, OrderId & { amountCents: number; denominationCents: number }>
    >,
    paymentStatus: notProvided("paymentStatus") as unknown as ReturnType<
      typeof fromPromise<Payment | null, OrderId>
    >,
    retrieve: notProvided("retrieve") as unknown as ReturnType<typeof fromPromise<void, OrderId>>,
    loadOven: notProvided("loadOven") as unknown as ReturnType<typeof fromPromise<void, OrderId>>,
    cook: notProvided("cook") as unknown as ReturnType<
      typeof fromPromise<
        CookingSession,
        OrderId & { targetC: number; cookTimeMs: number; pizzaId: string }
      >
    >,
    unload: notProvided("unload") as unknown as ReturnType<typeof fromPromise<void, OrderId>>,
    openDoor: notProvided("openDoor") as unknown as ReturnType<typeof fromPromise<void, OrderId>>,
    /** Whether the arm saw the pizza of the order taken, once its door is shut. */
    confirmTaken: notProvided("confirmTaken") as unknown as ReturnType<
      typeof fromPromise<boolean, OrderId>
    >,
    settle: notProvided("settle") as unknown as ReturnType<typeof fromPromise<Payment, OrderId>>,
    refund: notProvided("refund") as unknown as ReturnType<
      typeof fromPromise<Payment | null, OrderId & { reason: string }>
    >,
  },
  actions: {
    /** Journals the record; provided by the host. */
    persist: () => {},
    /** Raises an alert; provided by the host. */
    alert: (_, _params: { type: "PICKUP_LOCKED" | "PIZZA_ABANDONED"; message: string }) => {},
    enter: assign(({ context }, params: { status: OrderStatus; stage: OrderStage }) => ({
      record: {
        ...context.record,
        stage: params.stage,
        order: { ...context.record.order, status: params.status },
      },
    })),
    keepStage: assign(({ context }, params: { stage: OrderStage }) => ({
      record: { ...context.record, stage: params.stage },
    })),
    rememberPayment: assign(({ context }, params: { payment: Payment }) => ({
      lastError: null,
      record: {
        ...context.record,
        payment: params.payment,
        order: {
          ...context.record.order,
          paymentMethod: params.payment.method,
          ...(params.payment.transactionId
            ? { paymentTransactionId: params.payment.transactionId }
            : {}),
        },
      },
    })),
    rememberError: assign((_, params: { error: unknown }) => ({
      lastError: errorOf(params.error),
    })),
    markPaid: assign(({ context }, params: { at: number }) => ({
      record: { ...context.record, paidAt: context.record.paidAt ?? params.at },
    })),
    requestCancel: assign(({ event }) => {
      const e = event as Extract<OrderEvent, { type: "CANCEL" }>;
      return { cancelRequest: { reason: e.reason, by: e.by } };
    }),
    setReason: assign(({ context }, params: { reason: string }) => ({
      record: { ...context.record, order: { ...context.record.order, reason: params.reason } },
    })),
    markReady: assign(({ context }, params: { at: number }) => ({
      readyTimeoutMs: context.record.order.readyAt === null ? readyHoldMs : context.readyTimeoutMs,
      record: {
        ...context.record,
        order: { ...context.record.order, readyAt: context.record.order.readyAt ?? params.at },
      },
    })),
    markDispensed: assign(({ context }, params: { at: number }) => ({
      record: { ...context.record, order: { ...context.record.order, dispensedAt: params.at } },
    })),
    wrongCode: assign(({ context }) => {
      const wrongCodes = context.record.wrongCodes + 1;
      const locked = wrongCodes >= maxWrongCodes;
      return {
        record: { ...context.record, wrongCodes, locked },
        pickupResult: {
          success: false,
          message: locked
            ? `Wrong code: pickup is locked after ${maxWrongCodes} wrong codes, please call staff`
            : "Wrong code",
          attemptsLeft: maxWrongCodes - wrongCodes,
        },
      };
    }),
    refusedLocked: assign(() => ({
      pickupResult: {
        success: false,
        message: `Pickup is locked after ${maxWrongCodes} wrong codes, please call staff`,
        attemptsLeft: 0,
      },
    })),
    doorOpening: assign(({ context }) => ({
      pickupResult: {
        success: true,
        message: "Code accepted: the door is opening",
        attemptsLeft: maxWrongCodes - context.record.wrongCodes,
      },
    })),
    doorFailed: assign(({ context }, params: { error: unknown }) => ({
      pickupResult: {
        success: false,
        message: `The door could not open: ${errorOf(params.error).message}`,
        attemptsLeft: maxWrongCodes - context.record.wrongCodes,
      },
    })),
    rememberSession: assign((_, params: { session: CookingSession }) => ({
      session: params.session,
    })),
  },
  guards: {
    // Null when the payment actor never heard of the order (the request was lost).
    authorized: (_, params: { payment: Payment | null }) => params.payment?.status === "AUTHORIZED",
    declined: (_, params: { payment: Payment | null }) => params.payment?.status === "FAILED",
    cancelRequested: ({ context }) => context.cancelRequest !== null,
    locked: ({ context }) => context.record.locked,
    codeMatches: ({ context, event }) =>
      event.type === "PICKUP_CODE" && event.code === context.record.order.pickupCode,
    lockingNow: ({ context }) => context.record.wrongCodes + 1 >= maxWrongCodes,
    staffCancel: ({ event }) => event.type === "CANCEL" && event.by !== "CUSTOMER",
    takenByArm: (_, params: { taken: boolean }) => params.taken,
    hasPayment: (_, params: { payment: Payment | null }) =>
      params.payment !== null && ["VOIDED", "REFUNDED"].includes(params.payment.status),
    resumeAt: ({ context }, params: { stage: OrderStage }) => context.record.stage === params.stage,
  },
  delays: {
    unpaidTimeout: 10 * 60_000,
    paymentPendingTimeout: 15 * 60_000,
    ovenWait: 20 * 60_000,
    bayWait: 10 * 60_000,
    readyHold: ({ context }) => context.readyTimeoutMs,
    moneyRetry: 30_000,
  },
}).createMachine({
  id: "order",
  context: ({ input }) => ({
    record: input.record,
    lastError: null,
    pickupResult: null,
    cancelRequest: null,
    readyTimeoutMs: input.readyTimeoutMs ?? readyHoldMs,
    session: null,
    now: input.now,
  }),
  initial: "boot",
  states: {
    // A recovered order resumes where its journal says; a new one starts pending.
    boot: {
      always: [
        { guard: { type: "resumeAt", params: { stage: "paying" } }, target: "resumePaying" },
        {
          guard: { type: "resumeAt", params: { stage: "payment_pending" } },
          target: "paymentPending",
        },
        { guard: { type: "resumeAt", params: { stage: "queued" } }, target: "paid" },
        {
          guard: { type: "resumeAt", params: { stage: "preparing" } },
          target: "refunding",
          actions: {
            type: "setReason",
            params: { reason: "controller restarted during preparation; pizza discarded" },
          },
        },
        { guard: { type: "resumeAt", params: { stage: "ready" } }, target: "ready" },
        { guard: { type: "resumeAt", params: { stage: "settling" } }, target: "dispensed" },
        { guard: { type: "resumeAt", params: { stage: "refunding" } }, target: "refunding" },
        { target: "pending" },
      ],
    },
    pending: {
      entry: [{ type: "enter", params: { status: "PENDING", stage: "pending" } }, "persist"],
      on: {
        PAY: "paying",
        INSERT_CASH: "insertingCash",
        CANCEL: {
          target: "refunding",
          actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
      after: {
        unpaidTimeout: {
          target: "refunding",
          actions: { type: "setReason", params: { reason: "not paid within 10 minutes" } },
        },
      },
    },
    resumePaying: {
      invoke: {
        src: "paymentStatus",
        input: ({ context }) => ({ orderId: context.record.order.orderId }),
        onDone: [
          {
            guard: { type: "authorized", params: ({ event }) => ({ payment: event.output }) },
            target: "paid",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output! }),
            },
          },
          {
            guard: ({ event }) => event.output?.status === "PENDING",
            target: "paymentPending",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output! }),
            },
          },
          { target: "pending" },
        ],
        onError: { target: "resumePaying", reenter: true },
      },
    },
    paying: {
      entry: [
        { type: "enter", params: { status: "PAYMENT_PROCESSING", stage: "paying" } },
        "persist",
      ],
      on: { CANCEL: { actions: "requestCancel" } },
      invoke: {
        src: "authorize",
        input: ({ context, event }) => {
          const e = event as Extract<OrderEvent, { type: "PAY" }>;
          return {
            orderId: context.record.order.orderId,
            amountCents: context.record.order.totalAmountCents,
            method: e.method,
            token: e.token,
          };
        },
        onDone: [
          {
            guard: "cancelRequested",
            target: "refunding",
            actions: [
              { type: "rememberPayment", params: ({ event }) => ({ payment: event.output }) },
              {
                type: "setReason",
                params: ({ context }) => ({ reason: context.cancelRequest!.reason }),
              },
            ],
          },
          {
            guard: { type: "authorized", params: ({ event }) => ({ payment: event.output }) },
            target: "paid",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output }),
            },
          },
          {
            guard: { type: "declined", params: ({ event }) => ({ payment: event.output }) },
            target: "pending",
            actions: [
              { type: "rememberPayment", params: ({ event }) => ({ payment: event.output }) },
              {
                type: "rememberError",
                params: () => ({
                  error: new StepError({ code: "CONFLICT", message: "Payment declined" }),
                }),
              },
            ],
          },
          {
            target: "paymentPending",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output }),
            },
          },
        ],
        onError: [
          {
            guard: "cancelRequested",
            target: "refunding",
            actions: {
              type: "setReason",
              params: ({ context }) => ({ reason: context.cancelRequest!.reason }),
            },
          },
          {
            target: "pending",
            actions: { type: "rememberError", params: ({ event }) => ({ error: event.error }) },
          },
        ],
      },
    },
    insertingCash: {
      entry: [{ type: "keepStage", params: { stage: "paying" } }, "persist"],
      invoke: {
        src: "insertCash",
        input: ({ context, event }) => ({
          orderId: context.record.order.orderId,
          amountCents: context.record.order.totalAmountCents,
          denominationCents: (event as Extract<OrderEvent, { type: "INSERT_CASH" }>)
            .denominationCents,
        }),
        onDone: [
          {
            guard: { type: "authorized", params: ({ event }) => ({ payment: event.output }) },
            target: "paid",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output }),
            },
          },
          {
            target: "pending",
            actions: {
              type: "rememberPayment",
              params: ({ event }) => ({ payment: event.output }),
            },
          },
        ],
        onError: {
          target: "pending",
          actions: { type: "rememberError", params: ({ event }) => ({ error: event.error }) },
        },
      },
    },
    paymentPending: {
      entry: [
        { type: "enter", params: { status: "PAYMENT_PENDING", stage: "payment_pending" } },
        "persist",
      ],
      on: {
        CANCEL: {
          target: "refunding",
          actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
      after: {
        paymentPendingTimeout: {
          target: "refunding",
          actions: {
            type: "setReason",
            params: { reason: "payment could not be confirmed within 15 minutes" },
          },
        },
      },
    },
    paid: {
      entry: [
        { type: "markPaid", params: ({ context }) => ({ at: context.now() }) },
        { type: "enter", params: { status: "PAID", stage: "queued" } },
        "persist",
      ],
      on: {
        START: "preparing",
        CANCEL: {
          target: "refunding",
          actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
    },
    preparing: {
      entry: [{ type: "enter", params: { status: "PREPARING", stage: "preparing" } }, "persist"],
      on: {
        CANCEL: {
          guard: "staffCancel",
          target: "refunding",
          actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
      initial: "retrieving",
      states: {
        retrieving: {
          invoke: {
            src: "retrieve",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: "awaitingOven",
            onError: refundWhenFailed("retrieval"),
          },
        },
        awaitingOven: {
          on: { OVEN_GRANTED: "loading" },
          after: {
            ovenWait: {
              target: "#order.refunding",
              actions: { type: "setReason", params: { reason: "oven not free within 20 minutes" } },
            },
          },
        },
        loading: {
          invoke: {
            src: "loadOven",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: "cooking",
            onError: refundWhenFailed("loading the oven"),
          },
        },
        cooking: {
          invoke: {
            src: "cook",
            input: ({ context }) => ({
              orderId: context.record.order.orderId,
              pizzaId: context.record.pizza.pizzaId,
              targetC: context.record.pizza.cookingTempC,
              cookTimeMs: context.record.pizza.cookingTimeMs,
            }),
            onDone: {
              target: "awaitingBay",
              actions: {
                type: "rememberSession",
                params: ({ event }) => ({ session: event.output }),
              },
            },
            onError: refundWhenFailed("cooking"),
          },
        },
        awaitingBay: {
          on: { BAY_GRANTED: "unloading" },
          after: {
            bayWait: {
              target: "#order.refunding",
              actions: {
                type: "setReason",
                params: { reason: "pickup area not free within 10 minutes" },
              },
            },
          },
        },
        unloading: {
          invoke: {
            src: "unload",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: "#order.ready",
            onError: refundWhenFailed("moving to pickup"),
          },
        },
      },
    },
    ready: {
      entry: [
        { type: "markReady", params: ({ context }) => ({ at: context.now() }) },
        { type: "enter", params: { status: "READY", stage: "ready" } },
        "persist",
      ],
      on: {
        TAKEN: "dispensed",
        CANCEL: {
          guard: "staffCancel",
          target: "refunding",
          actions: { type: "setReason", params: ({ event }) => ({ reason: event.reason }) },
        },
      },
      // The arm's `taken` event may have been lost: ask the arm before refunding.
      after: { readyHold: ".expiring" },
      initial: "waiting",
      states: {
        waiting: {
          on: {
            PICKUP_CODE: [
              { guard: "locked", actions: "refusedLocked" },
              { guard: "codeMatches", target: "opening", actions: "doorOpening" },
              {
                guard: "lockingNow",
                actions: [
                  "wrongCode",
                  "persist",
                  {
                    type: "alert",
                    params: ({ context }) => ({
                      type: "PICKUP_LOCKED",
                      message:
                        `Pickup of order ${context.record.order.orderId} locked after ${maxWrongCodes} wrong codes`,
                    }),
                  },
                ],
              },
              { actions: ["wrongCode", "persist"] },
            ],
            OPEN_DOOR: { target: "opening", actions: "doorOpening" },
          },
        },
        opening: {
          invoke: {
            src: "openDoor",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: "doorOpen",
            onError: {
              target: "waiting",
              actions: { type: "doorFailed", params: ({ event }) => ({ error: event.error }) },
            },
          },
        },
        doorOpen: { on: { DOOR_CLOSED: "waiting" } },
        expiring: {
          invoke: {
            src: "confirmTaken",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: [
              {
                guard: { type: "takenByArm", params: ({ event }) => ({ taken: event.output }) },
                target: "#order.dispensed",
              },
              abandoned(),
            ],
            onError: abandoned(),
          },
        },
      },
    },
    dispensed: {
      entry: [
        { type: "markDispensed", params: ({ context }) => ({ at: context.now() }) },
        { type: "enter", params: { status: "DISPENSED", stage: "settling" } },
        "persist",
      ],
      initial: "settling",
      states: {
        settling: {
          invoke: {
            src: "settle",
            input: ({ context }) => ({ orderId: context.record.order.orderId }),
            onDone: {
              target: "settled",
              actions: {
                type: "rememberPayment",
                params: ({ event }) => ({ payment: event.output }),
              },
            },
            onError: "retrying",
          },
        },
        retrying: { after: { moneyRetry: "settling" } },
        settled: { type: "final" },
      },
      onDone: "closed",
    },
    closed: {
      type: "final",
      entry: [{ type: "keepStage", params: { stage: "done" } }, "persist"],
    },
    refunding: {
      entry: [{ type: "keepStage", params: { stage: "refunding" } }, "persist"],
      initial: "returning",
      states: {
        returning: {
          invoke: {
            src: "refund",
            input: ({ context }) => ({
              orderId: context.record.order.orderId,
              reason: context.record.order.reason ?? "cancelled",
            }),
            onDone: [
              {
                guard: { type: "hasPayment", params: ({ event }) => ({ payment: event.output }) },
                target: "#order.refunded",
                actions: {
                  type: "rememberPayment",
                  params: ({ event }) => ({ payment: event.output! }),
                },
              },
              { target: "#order.cancelled" },
            ],
            onError: "retrying",
          },
        },
        retrying: { after: { moneyRetry: "returning" } },
      },
    },
    refunded: {
      type: "final",
      entry: [{ type: "enter", params: { status: "REFUNDED", stage: "done" } }, "persist"],
    },
    cancelled: {
      type: "final",
      entry: [{ type: "enter", params: { status: "CANCELLED", stage: "done" } }, "persist"],
    },
  },
});
