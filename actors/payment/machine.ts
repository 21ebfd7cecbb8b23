/**
 * The payment actor's machines: one gateway operation with the retry policy of
 * seed 003 §6.4, and the service's card-reader state (cards or cash only).
 */
import { assign, fromCallback, fromPromise, setup } from "xstate";
import type { GatewayApproval, GatewayDecline, GatewayResult } from "../../hardware/payment.ts";

/** How a gateway operation is retried. */
export interface RetryPolicy {
  /** A call without an answer after this many clock ms counts as failed. */
  callTimeoutMs: number;
  /** Wait before each retry; its length is the number of retries. */
  backoffMs: readonly number[];
}

/** Decline is final; errors and silence retry 3 times after 1, 2 and 4 s. */
export const defaultRetryPolicy: RetryPolicy = {
  callTimeoutMs: 5_000,
  backoffMs: [1_000, 2_000, 4_000],
};

/** How one gateway operation ended, after all its attempts. */
export type OpOutcome =
  | { type: "approved"; approval: GatewayApproval; attempts: number }
  | { type: "declined"; decline: GatewayDecline; attempts: number }
  | { type: "unreachable"; lastError: string; attempts: number };

interface OpContext {
  policy: RetryPolicy;
  attempt: number;
  answer: GatewayResult | null;
  lastError: string;
}

/**
 * One gateway operation (authorize, capture, void, payout) under the retry
 * policy. The `call` placeholder is provided by the host; it is invoked once per
 * attempt with the same idempotency key, so a retry never moves money twice.
 */
export const gatewayOpMachine = setup({
  types: {
    context: {} as OpContext,
    input: {} as { policy: RetryPolicy },
    output: {} as OpOutcome,
  },
  actors: {
    call: fromPromise<GatewayResult, { attempt: number }>(() =>
      Promise.reject(new Error("Gateway call not provided"))
    ),
  },
  delays: {
    callTimeout: ({ context }) => context.policy.callTimeoutMs,
    backoff: ({ context }) =>
      context.policy.backoffMs[context.attempt - 1] ?? context.policy.backoffMs.at(-1) ?? 0,
  },
  guards: {
    answerApproved: ({ context }) => context.answer?.type === "approved",
    answerDeclined: ({ context }) => context.answer?.type === "declined",
    attemptsLeft: ({ context }) => context.attempt <= context.policy.backoffMs.length,
  },
  actions: {
    countAttempt: assign({ attempt: ({ context }) => context.attempt + 1, answer: null }),
    recordAnswer: assign((_, answer: GatewayResult) =>
      answer.type === "error"
        ? { answer, lastError: `${answer.code}: ${answer.message}` }
        : { answer }
    ),
    recordError: assign((_, params: { error: unknown }) => ({
      lastError: params.error instanceof Error ? params.error.message : String(params.error),
    })),
    recordTimeout: assign(({ context }) => ({
      lastError: `No answer within ${context.policy.callTimeoutMs} ms`,
    })),
  },
}).createMachine({
  id: "gatewayOp",
  context: ({ input }) => ({ policy: input.policy, attempt: 0, answer: null, lastError: "" }),
  initial: "calling",
  states: {
    calling: {
      tags: ["busy"],
      entry: "countAttempt",
      invoke: {
        src: "call",
        input: ({ context }) => ({ attempt: context.attempt }),
        onDone: {
          target: "answered",
          actions: { type: "recordAnswer", params: ({ event }) => event.output },
        },
        onError: {
          target: "failedAttempt",
          actions: { type: "recordError", params: ({ event }) => ({ error: event.error }) },
        },
      },
      after: { callTimeout: { target: "failedAttempt", actions: "recordTimeout" } },
    },
    answered: {
      always: [
        { guard: "answerApproved", target: "approved" },
        { guard: "answerDeclined", target: "declined" },
        { target: "failedAttempt" },
      ],
    },
    failedAttempt: {
      always: [{ guard: "attemptsLeft", target: "backoff" }, { target: "unreachable" }],
    },
    backoff: { after: { backoff: "calling" } },
    approved: { type: "final" },
    declined: { type: "final" },
    unreachable: { type: "final", tags: ["fault"] },
  },
  output: ({ context }): OpOutcome => {
    const { answer, attempt: attempts } = context;
    if (answer?.type === "approved") return { type: "approved", approval: answer, attempts };
    if (answer?.type === "declined") return { type: "declined", decline: answer, attempts };
    return { type: "unreachable", lastError: context.lastError, attempts };
  },
});

/** Events of the card reader stream. */
export type ReaderEvent = { type: "READER.ONLINE" } | { type: "READER.OFFLINE" };

/**
 * The payment service: whether cards are taken (`cards`) or only cash
 * (`cashOnly`), following the card reader. Each change is announced.
 */
export const paymentServiceMachine = setup({
  types: { events: {} as ReaderEvent },
  actors: {
    readerStream: fromCallback<ReaderEvent>(() => () => {}),
  },
  guards: {
    readerOnline: () => true,
  },
  actions: {
    announceReader: (_, _params: { online: boolean }) => {},
  },
}).createMachine({
  id: "payment",
  invoke: { src: "readerStream" },
  initial: "starting",
  states: {
    starting: {
      always: [{ guard: "readerOnline", target: "cardsAccepted" }, { target: "cashOnly" }],
    },
    cardsAccepted: {
      tags: ["cards"],
      entry: { type: "announceReader", params: { online: true } },
      on: { "READER.OFFLINE": "cashOnly" },
    },
    cashOnly: {
      tags: ["cashOnly"],
      entry: { type: "announceReader", params: { online: false } },
      on: { "READER.ONLINE": "cardsAccepted" },
    },
  },
});
