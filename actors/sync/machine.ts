/**
 * The sync actor's sender as an XState machine: idle while the outbox is
 * empty, sending a bounded batch (oldest first) while it is not, waiting with
 * exponential backoff after a failure. Every send has a deadline; the
 * placeholders (the send itself, the backlog guard) come from the host.
 */
import { assign, fromPromise, setup } from "xstate";

/** What one send did. */
export interface SendResult {
  /** Events JetStream acknowledged. */
  acked: number;
}

/** Timing of the sender, in clock ms. */
export interface SenderTiming {
  /** First backoff after a failure; doubles per failure. */
  backoffBaseMs: number;
  /** Longest backoff. */
  backoffMaxMs: number;
  /** A send taking longer than this counts as failed. */
  sendDeadlineMs: number;
}

/** The sender's context. */
export interface SenderContext extends SenderTiming {
  /** Failed sends since the last success. */
  failures: number;
  lastError: string | null;
  /** A draw in [0, 1) for the jitter of the next backoff. */
  jitter: number;
}

/** Events the sender takes. */
export type SenderEvent = { type: "OUTBOX.ADDED" } | { type: "LINK.UP" };

/** The sender machine. */
export const senderMachine = setup({
  types: {
    context: {} as SenderContext,
    events: {} as SenderEvent,
    input: {} as SenderTiming & { jitter: number },
  },
  actors: {
    sendBatch: fromPromise<SendResult>(() => Promise.resolve({ acked: 0 })),
  },
  guards: {
    hasBacklog: () => false,
  },
  actions: {
    noteSuccess: assign({ failures: 0, lastError: null }),
    noteFailure: assign({
      failures: ({ context }) => context.failures + 1,
      lastError: ({ event }) => String((event as { error?: unknown }).error ?? "send failed"),
    }),
    noteTimeout: assign({
      failures: ({ context }) => context.failures + 1,
      lastError: ({ context }) => `No acknowledgement within ${context.sendDeadlineMs} ms`,
    }),
    /** Placeholder: the host draws from its Random. */
    drawJitter: assign({ jitter: 0 }),
  },
  delays: {
    backoffMs: ({ context }) => {
      const exp = context.backoffBaseMs * 2 ** Math.min(20, Math.max(0, context.failures - 1));
      const capped = Math.min(context.backoffMaxMs, exp);
      // Up to +25 %, so a fleet that lost its uplink together does not return in step.
      return Math.round(capped * (1 + 0.25 * context.jitter));
    },
    sendDeadlineMs: ({ context }) => context.sendDeadlineMs,
  },
}).createMachine({
  id: "sync",
  context: ({ input }) => ({ ...input, failures: 0, lastError: null }),
  initial: "idle",
  states: {
    idle: {
      tags: ["online"],
      always: { guard: "hasBacklog", target: "sending" },
      on: { "OUTBOX.ADDED": "sending", "LINK.UP": { guard: "hasBacklog", target: "sending" } },
    },
    sending: {
      invoke: {
        src: "sendBatch",
        onDone: [
          { guard: "hasBacklog", target: "sending", reenter: true, actions: "noteSuccess" },
          { target: "idle", actions: "noteSuccess" },
        ],
        onError: { target: "waiting", actions: "noteFailure" },
      },
      after: { sendDeadlineMs: { target: "waiting", actions: "noteTimeout" } },
    },
    waiting: {
      tags: ["offline"],
      entry: "drawJitter",
      after: { backoffMs: "sending" },
      // The connection came back: no need to sit out the rest of the backoff.
      on: { "LINK.UP": "sending" },
    },
  },
});
