/**
 * The carousel's state machine, three regions in parallel:
 * - `mechanism` works the retrieval queue one pizza at a time (rotate, eject),
 *   each step under a deadline; a failure latches `fault` until a service.
 * - `storage` follows the probe: `cold` or `warm` (above 5 °C or unreadable).
 * - `sales` stops selling when storage stays warm past the debounce (or past a
 *   restock's grace) and resumes only after a service AND cold storage.
 * Side effects (journal, bus) are placeholders here, provided by the host.
 */
import { assign, fromCallback, fromPromise, setup } from "xstate";
import {
  describeWarmStorage,
  isAboveLimit,
  salesLimitPassed,
  type TempSample,
} from "./food_safety.ts";

/** One pizza on its way from a slot to the arm. */
export interface RetrievalJob {
  orderId: string;
  itemId: string;
  pizzaId: string;
  storageSlot: number;
  expiresAt: number;
}

/** A probe reading. */
export type SampleEvent = { type: "SAMPLE" } & TempSample;

/** Events the carousel machine takes. */
export type CarouselEvent =
  | SampleEvent
  | { type: "ENQUEUE"; job: RetrievalJob }
  | { type: "CANCEL"; orderId: string }
  | { type: "RESTOCKED"; graceUntilMs: number }
  | { type: "SERVICE" };

/** What the machine starts from: the latch and grace as the journal kept them. */
export interface CarouselInput {
  salesStopped: boolean;
  stopReason: string | null;
  /** A technician serviced storage since sales stopped. */
  serviced: boolean;
  graceUntilMs: number;
  highSinceMs: number | null;
  lastTempC: number | null;
  rotateTimeoutMs: number;
  ejectTimeoutMs: number;
}

/** The machine's context. */
export interface CarouselContext {
  /** queue[0] is the job being worked while in `mechanism.retrieving`. */
  queue: RetrievalJob[];
  graceUntilMs: number;
  highSinceMs: number | null;
  lastTempC: number | null;
  stopReason: string | null;
  /** A technician serviced storage since sales stopped. */
  serviced: boolean;
  fault: string | null;
  rotateTimeoutMs: number;
  ejectTimeoutMs: number;
}

function sampleOf(event: CarouselEvent): TempSample {
  return event.type === "SAMPLE"
    ? { atMs: event.atMs, tempC: event.tempC }
    : { atMs: 0, tempC: null };
}

function stopReasonOf(context: CarouselContext, event: CarouselEvent): string {
  const { atMs, tempC } = sampleOf(event);
  const since = context.highSinceMs ?? atMs;
  const grace = context.graceUntilMs > since ? " (past the 30-min restock grace)" : "";
  return `${describeWarmStorage(tempC, since, atMs)}${grace}`;
}

/** A stroke of the mechanism (`what`) failed: the mechanism faults, saying why. */
function strokeFailed(what: string) {
  return {
    target: "#carousel.mechanism.fault",
    actions: {
      type: "setFault",
      params: ({ event }: { event: { error: unknown } }) => ({
        message: `${what} failed: ${String(event.error)}`,
      }),
    },
  } as const;
}

/** A stroke of the mechanism (`what`) outlasted its deadline `limit`: the mechanism faults. */
function strokeLate(what: string, limit: "rotateTimeoutMs" | "ejectTimeoutMs") {
  return {
    target: "#carousel.mechanism.fault",
    actions: {
      type: "setFault",
      params: ({ context }: { context: CarouselContext }) => ({
        message: `${what} did not finish within ${context[limit]} ms`,
      }),
    },
  } as const;
}

/** The carousel machine; provide its actors and the actions marked as host hooks. */
export const carouselMachine = setup({
  types: {
    context: {} as CarouselContext,
    events: {} as CarouselEvent,
    input: {} as CarouselInput,
  },
  actors: {
    /** Reads the probe periodically and sends SAMPLE events back. */
    temperatureSampler: fromCallback<CarouselEvent>(() => () => {}),
    rotate: fromPromise<void, { slot: number }>(() => Promise.resolve()),
    eject: fromPromise<void, { slot: number }>(() => Promise.resolve()),
  },
  actions: {
    enqueue: assign({
      queue: ({ context, event }) =>
        event.type === "ENQUEUE" ? [...context.queue, event.job] : context.queue,
    }),
    cancelQueued: assign({
      // The host never cancels the job at the hatch: that pizza is already leaving.
      queue: ({ context, event }) =>
        event.type === "CANCEL"
          ? context.queue.filter((j) => j.orderId !== event.orderId)
          : context.queue,
    }),
    dequeue: assign({ queue: ({ context }) => context.queue.slice(1) }),
    setFault: assign({ fault: (_, params: { message: string }) => params.message }),
    clearFault: assign({ fault: null }),
    openGrace: assign({
      graceUntilMs: ({ context, event }) =>
        event.type === "RESTOCKED"
          ? Math.max(context.graceUntilMs, event.graceUntilMs)
          : context.graceUntilMs,
    }),
    rememberTemp: assign({
      lastTempC: ({ context, event }) =>
        event.type === "SAMPLE" && event.tempC !== null ? event.tempC : context.lastTempC,
    }),
    setHighSince: assign({ highSinceMs: ({ event }) => sampleOf(event).atMs }),
    clearHighSince: assign({ highSinceMs: null }),
    setStopReason: assign({
      stopReason: (_, params: { reason: string }) => params.reason,
      serviced: false,
    }),
    clearStopReason: assign({ stopReason: null, serviced: false }),
    markServiced: assign({ serviced: true }),
    // Host hooks: journal writes, events, alerts.
    recordSample: (_, _params: TempSample) => {},
    persistHighSince: (_, _params: { highSinceMs: number | null }) => {},
    raiseTemperatureAlert: (_, _params: TempSample) => {},
    resolveTemperatureAlert: (_, _params: TempSample) => {},
    announceSalesStopped: (_, _params: { reason: string }) => {},
    persistServiced: () => {},
    announceSalesResumed: () => {},
    completeRetrieval: (_, _params: { job: RetrievalJob }) => {},
    failRetrieval: (_, _params: { job: RetrievalJob; message: string }) => {},
  },
  guards: {
    hasQueuedJob: ({ context }) => context.queue.length > 0,
    sampleAboveLimit: ({ event }) => event.type === "SAMPLE" && isAboveLimit(event.tempC),
    sampleWithinLimit: ({ event }) => event.type === "SAMPLE" && !isAboveLimit(event.tempC),
    storageCold: ({ context }) => context.highSinceMs === null && context.lastTempC !== null,
    startsStopped: ({ context }) => context.stopReason !== null,
    startedServiced: ({ context }) => context.serviced,
    startsWarm: ({ context }) => context.highSinceMs !== null,
    salesLimitPassed: ({ context, event }) =>
      event.type === "SAMPLE" && isAboveLimit(event.tempC) &&
      salesLimitPassed(context.highSinceMs ?? event.atMs, context.graceUntilMs, event.atMs),
  },
  delays: {
    rotateTimeout: ({ context }) => context.rotateTimeoutMs,
    ejectTimeout: ({ context }) => context.ejectTimeoutMs,
  },
}).createMachine({
  id: "carousel",
  type: "parallel",
  context: ({ input }) => ({
    queue: [],
    graceUntilMs: input.graceUntilMs,
    highSinceMs: input.highSinceMs,
    lastTempC: input.lastTempC,
    stopReason: input.salesStopped ? (input.stopReason ?? "sales stopped") : null,
    serviced: input.salesStopped && input.serviced,
    fault: null,
    rotateTimeoutMs: input.rotateTimeoutMs,
    ejectTimeoutMs: input.ejectTimeoutMs,
  }),
  invoke: { src: "temperatureSampler" },
  states: {
    mechanism: {
      initial: "idle",
      on: {
        ENQUEUE: { actions: "enqueue" },
        CANCEL: { actions: "cancelQueued" },
      },
      states: {
        idle: {
          tags: ["safe"],
          always: { guard: "hasQueuedJob", target: "retrieving" },
        },
        retrieving: {
          initial: "rotating",
          states: {
            rotating: {
              invoke: {
                src: "rotate",
                input: ({ context }) => ({ slot: context.queue[0]!.storageSlot }),
                onDone: "ejecting",
                onError: strokeFailed("rotation"),
              },
              after: { rotateTimeout: strokeLate("rotation", "rotateTimeoutMs") },
            },
            ejecting: {
              invoke: {
                src: "eject",
                input: ({ context }) => ({ slot: context.queue[0]!.storageSlot }),
                onDone: {
                  target: "#carousel.mechanism.idle",
                  actions: [
                    {
                      type: "completeRetrieval",
                      params: ({ context }) => ({ job: context.queue[0]! }),
                    },
                    "dequeue",
                  ],
                },
                onError: strokeFailed("ejection"),
              },
              after: { ejectTimeout: strokeLate("ejection", "ejectTimeoutMs") },
            },
          },
        },
        fault: {
          // Leaving `retrieving` stopped the motor (its promise was aborted).
          tags: ["fault", "safe"],
          entry: [
            {
              type: "failRetrieval",
              params: ({ context }) => ({
                job: context.queue[0]!,
                message: context.fault ?? "carousel fault",
              }),
            },
            "dequeue",
          ],
          on: { SERVICE: { target: "idle", actions: "clearFault" } },
        },
      },
    },
    storage: {
      initial: "starting",
      states: {
        starting: {
          always: [{ guard: "startsWarm", target: "warm" }, { target: "cold" }],
        },
        cold: {
          on: {
            SAMPLE: [
              {
                guard: "sampleAboveLimit",
                target: "warm",
                actions: [
                  { type: "recordSample", params: ({ event }) => sampleOf(event) },
                  "rememberTemp",
                  "setHighSince",
                  {
                    type: "persistHighSince",
                    params: ({ event }) => ({ highSinceMs: sampleOf(event).atMs }),
                  },
                  { type: "raiseTemperatureAlert", params: ({ event }) => sampleOf(event) },
                ],
              },
              {
                actions: [
                  { type: "recordSample", params: ({ event }) => sampleOf(event) },
                  "rememberTemp",
                ],
              },
            ],
          },
        },
        warm: {
          tags: ["warm"],
          on: {
            SAMPLE: [
              {
                guard: "sampleWithinLimit",
                target: "cold",
                actions: [
                  { type: "recordSample", params: ({ event }) => sampleOf(event) },
                  "rememberTemp",
                  "clearHighSince",
                  { type: "persistHighSince", params: { highSinceMs: null } },
                  { type: "resolveTemperatureAlert", params: ({ event }) => sampleOf(event) },
                ],
              },
              {
                actions: [
                  { type: "recordSample", params: ({ event }) => sampleOf(event) },
                  "rememberTemp",
                ],
              },
            ],
          },
        },
      },
    },
    sales: {
      initial: "starting",
      states: {
        starting: {
          always: [{ guard: "startsStopped", target: "stopped" }, { target: "selling" }],
        },
        selling: {
          tags: ["selling"],
          on: {
            RESTOCKED: { actions: "openGrace" },
            SAMPLE: {
              guard: "salesLimitPassed",
              target: "stopped",
              actions: [
                {
                  type: "setStopReason",
                  params: ({ context, event }) => ({ reason: stopReasonOf(context, event) }),
                },
                {
                  type: "announceSalesStopped",
                  params: ({ context, event }) => ({ reason: stopReasonOf(context, event) }),
                },
              ],
            },
          },
        },
        stopped: {
          tags: ["salesStopped"],
          initial: "starting",
          states: {
            starting: {
              always: [
                { guard: "startedServiced", target: "awaitingCold" },
                { target: "awaitingService" },
              ],
            },
            awaitingService: {
              on: {
                SERVICE: [
                  {
                    guard: "storageCold",
                    target: "#carousel.sales.selling",
                    actions: ["clearStopReason", "announceSalesResumed"],
                  },
                  { target: "awaitingCold", actions: ["markServiced", "persistServiced"] },
                ],
              },
            },
            awaitingCold: {
              on: {
                SAMPLE: {
                  guard: "sampleWithinLimit",
                  target: "#carousel.sales.selling",
                  actions: ["clearStopReason", "announceSalesResumed"],
                },
              },
            },
          },
        },
      },
    },
  },
});
