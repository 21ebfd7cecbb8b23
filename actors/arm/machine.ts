/**
 * The arm's state machine: moves between storage, oven and pickup under a
 * deadline, the pickup door cycle, faults and reset. The arm never moves while
 * the door is open or safety halts it; a fault stops the drive first.
 * Hardware and bus effects are placeholders here; the host provides them.
 */
import { and, assign, fromCallback, fromPromise, setup, type SnapshotFrom } from "xstate";
import { ArmPosition as ArmPositions } from "../../protocol/arm.ts";
import type { ArmPosition } from "../../protocol/arm.ts";
import type { ArmSensors } from "../../hardware/arm.ts";
import {
  type ArmFacts,
  type ArmFault,
  type ArmLeg,
  type ArmMove,
  doorRefusal,
  moveRefusal,
  planLegs,
  resetRefusal,
} from "./rules.ts";

/** How many finished moves and taken orders the arm remembers for retries. */
export const historyLength = 64;

/** What the host hands the machine at start. */
export interface ArmInput {
  /** Where the drive reports the arm, or null when between positions. */
  position: ArmPosition | null;
  sensors: ArmSensors;
  pickupBays: number;
  /** How long the door stays open for a customer who does not take the pizza. */
  doorTimeoutMs: number;
  doorTravelMs: number;
  /** A move or door stroke faults after this many times its nominal time. */
  deadlineFactor: number;
  /** No deadline is shorter than this, however short the nominal time. */
  minDeadlineMs: number;
  travelTimeMs: (from: ArmPosition, to: ArmPosition) => number;
  /** Orders whose pizza was taken, oldest first, as the journal kept them across restarts. */
  taken: string[];
}

/** The arm's context. */
export interface ArmContext extends ArmFacts {
  move: ArmMove | null;
  lastOrderId: string | null;
  /** Finished moves, so a retried request gets DONE. */
  completed: { orderId: string; to: ArmPosition }[];
  /** The order the door is open for (null when it opened without one). */
  doorOrderId: string | null;
  /** Taken during this door cycle; `taken` is published once the door closed. */
  takenOrderId: string | null;
  /** A reset found the door open: home once it closed. */
  homingRequested: boolean;
  doorTimeoutMs: number;
  doorTravelMs: number;
  deadlineFactor: number;
  minDeadlineMs: number;
  travelTimeMs: (from: ArmPosition, to: ArmPosition) => number;
}

/** Events the arm machine takes. */
export type ArmEvent =
  | { type: "MOVE"; orderId: string; from: ArmPosition; to: ArmPosition }
  | { type: "OPEN_DOOR"; orderId: string }
  | { type: "RESET" }
  | { type: "SENSORS"; sensors: ArmSensors }
  | { type: "SAFETY"; tripped: boolean; causes: string[] };

/** Deadline of a stroke of `nominalMs`. */
function deadlineMs(context: ArmContext, nominalMs: number): number {
  return Math.max(context.minDeadlineMs, context.deadlineFactor * nominalMs);
}

/** The leg the drive is on, if any. */
function currentLeg(context: ArmContext): ArmLeg | undefined {
  return context.move?.legs[context.move.leg];
}

function errorText(event: unknown): string {
  const error = (event as { error?: unknown }).error;
  return error instanceof Error ? error.message : String(error);
}

function remember<T>(list: T[], item: T): T[] {
  return [...list, item].slice(-historyLength);
}

/**
 * How a leg under way faults, whether moving to a position or homing: the drive
 * fails, misses the leg's deadline, or is halted. The drive stops first.
 */
const legFaults = {
  onError: { target: "fault", actions: ["faultHalted", "stopDriver", "publishFault", "clearMove"] },
  after: {
    legDeadline: {
      target: "fault",
      actions: ["faultJam", "stopDriver", "publishFault", "clearMove"],
    },
  },
  on: {
    SENSORS: {
      guard: "haltAsserted",
      target: "fault",
      actions: ["assignSensors", "faultHalted", "stopDriver", "publishFault", "clearMove"],
    },
    SAFETY: {
      guard: "safetyTrips",
      target: "fault",
      actions: ["assignSafety", "faultHalted", "stopDriver", "publishFault", "clearMove"],
    },
  },
} as const;

/**
 * The pickup door failed or missed its deadline while `opening` (or closing):
 * the drive stops, and a pizza taken during the cycle is still announced.
 */
function doorJam(opening: boolean) {
  return {
    target: "#arm.fault",
    actions: [
      { type: "faultDoorJam", params: { opening } },
      "stopDriver",
      "publishFault",
      "publishTaken",
      "clearDoor",
    ],
  } as const;
}

/** The arm machine; the host provides its actors and effect actions. */
export const armMachine = setup({
  types: {
    context: {} as ArmContext,
    events: {} as ArmEvent,
    input: {} as ArmInput,
  },
  actors: {
    moveArm: fromPromise<void, { to: ArmPosition }>(() =>
      Promise.reject(new Error("moveArm is not provided"))
    ),
    driveDoor: fromPromise<void, { open: boolean }>(() =>
      Promise.reject(new Error("driveDoor is not provided"))
    ),
    watchSensors: fromCallback<ArmEvent>(() => {}),
    watchSafety: fromCallback<ArmEvent>(() => {}),
  },
  delays: {
    // Each leg has its own deadline, so a late start of the next leg is no jam.
    legDeadline: ({ context }) => deadlineMs(context, currentLeg(context)?.nominalMs ?? 0),
    doorDeadline: ({ context }) => deadlineMs(context, context.doorTravelMs),
    doorTimeout: ({ context }) => context.doorTimeoutMs,
  },
  guards: {
    positionUnknown: ({ context }) => !context.positionKnown,
    doorSensedOpen: ({ context }) => context.sensors.doorOpen,
    moveAllowed: ({ context, event }) => event.type === "MOVE" && !moveRefusal(context, event),
    moveIsNoop: ({ context, event }) =>
      event.type === "MOVE" && planLegs(context.position, event.from, event.to).length === 0,
    moreLegs: ({ context }) => !!context.move && context.move.leg + 1 < context.move.legs.length,
    doorAllowed: ({ context, event }) =>
      event.type === "OPEN_DOOR" && !doorRefusal(context, event.orderId),
    resetAllowed: ({ context }) => !resetRefusal(context),
    haltAsserted: ({ event }) => event.type === "SENSORS" && event.sensors.halted,
    safetyTrips: ({ event }) => event.type === "SAFETY" && event.tripped,
    pizzaLeft: ({ context, event }) =>
      event.type === "SENSORS" &&
      event.sensors.pizzasInPickup < context.sensors.pizzasInPickup &&
      context.doorOrderId !== null && context.takenOrderId === null &&
      context.placed.includes(context.doorOrderId),
    takenNoted: ({ context }) => context.takenOrderId !== null,
    hasFault: ({ context }) => context.fault !== null,
    homingRequested: ({ context }) => context.homingRequested,
  },
  actions: {
    // Effects: the host provides these.
    stopDriver: () => {},
    publishMoved: () => {},
    publishDoorOpen: () => {},
    publishDoorClosed: () => {},
    publishTaken: () => {},
    /** Journals `context.takenOrderId` before anything else learns of it. */
    journalTaken: () => {},
    publishFault: () => {},

    assignSensors: assign(({ context, event }) =>
      event.type === "SENSORS" ? { sensors: event.sensors } : { sensors: context.sensors }
    ),
    assignSafety: assign(({ context, event }) =>
      event.type === "SAFETY"
        ? { safetyTripped: event.tripped, safetyCauses: event.causes }
        : { safetyTripped: context.safetyTripped }
    ),
    assignMove: assign({
      move: ({ context, event }) => {
        if (event.type !== "MOVE") return context.move;
        let at = context.position;
        const legs = planLegs(at, event.from, event.to).map((to) => {
          const leg: ArmLeg = { to, nominalMs: context.travelTimeMs(at, to) };
          at = to;
          return leg;
        });
        const move: ArmMove = {
          orderId: event.orderId,
          from: event.from,
          to: event.to,
          legs,
          leg: 0,
        };
        return move;
      },
    }),
    nextLeg: assign(({ context }) => {
      const move = context.move;
      const done = currentLeg(context);
      if (!move || !done) return {};
      return { position: done.to, move: { ...move, leg: move.leg + 1 } };
    }),
    assignHoming: assign({
      homingRequested: false,
      move: ({ context }) => {
        // From an unknown spot, allow for the longest way home.
        const nominalMs = context.positionKnown
          ? context.travelTimeMs(context.position, "HOME")
          : Math.max(...ArmPositions.options.map((p) => context.travelTimeMs(p, "HOME")));
        const move: ArmMove = {
          orderId: null,
          from: context.position,
          to: "HOME",
          legs: [{ to: "HOME", nominalMs }],
          leg: 0,
        };
        return move;
      },
    }),
    recordArrival: assign(({ context }) => {
      const move = context.move;
      if (!move) return {};
      const orderId = move.orderId;
      return {
        position: move.to,
        positionKnown: true,
        lastOrderId: orderId ?? context.lastOrderId,
        completed: orderId
          ? remember(context.completed, { orderId, to: move.to })
          : context.completed,
        placed: orderId && move.to === "PICKUP" && !context.placed.includes(orderId)
          ? [...context.placed, orderId]
          : context.placed,
      };
    }),
    clearMove: assign({ move: null }),
    faultJam: assign(({ context }) => {
      const leg = currentLeg(context);
      const fault: ArmFault = {
        code: "JAM",
        message: `Arm did not reach "${leg?.to ?? "?"}" within ${
          deadlineMs(context, leg?.nominalMs ?? 0)
        } ms`,
      };
      return { fault, positionKnown: false };
    }),
    faultHalted: assign(({ context, event }) => {
      const to = context.move?.to ?? "?";
      let why: string;
      if (event.type === "SAFETY") {
        why = `safety tripped (${event.causes.join(", ") || "unknown cause"})`;
      } else if (event.type === "SENSORS") {
        why = "the safety halt output was asserted";
      } else why = `the drive stopped: ${errorText(event)}`;
      const fault: ArmFault = { code: "HALTED", message: `Move to "${to}" halted: ${why}` };
      return { fault, positionKnown: false };
    }),
    faultUnknownPosition: assign({
      fault: {
        code: "HALTED",
        message: "Arm position is unknown at start; reset homes it",
      } satisfies ArmFault,
    }),
    faultDoorJam: assign(({ context }, params: { opening: boolean }) => {
      const fault: ArmFault = {
        code: "DOOR_JAM",
        message: `Pickup door did not ${params.opening ? "open" : "close"} within ${
          deadlineMs(context, context.doorTravelMs)
        } ms`,
      };
      return { fault };
    }),
    clearFault: assign({ fault: null }),
    requestHoming: assign({ homingRequested: true }),
    assignDoorOrder: assign({
      doorOrderId: ({ context, event }) =>
        event.type === "OPEN_DOOR" ? event.orderId : context.doorOrderId,
      takenOrderId: null,
      // A pizza placed before a restart is adopted by the order that opens the door for it.
      placed: ({ context, event }) =>
        event.type === "OPEN_DOOR" && !context.placed.includes(event.orderId)
          ? [...context.placed, event.orderId]
          : context.placed,
    }),
    noteTaken: assign(({ context }) => {
      const orderId = context.doorOrderId;
      if (!orderId) return {};
      return {
        takenOrderId: orderId,
        placed: context.placed.filter((o) => o !== orderId),
        taken: remember(context.taken, orderId),
      };
    }),
    clearDoor: assign({ doorOrderId: null, takenOrderId: null }),
  },
}).createMachine({
  id: "arm",
  context: ({ input }) => ({
    position: input.position ?? "HOME",
    positionKnown: input.position !== null,
    sensors: input.sensors,
    safetyTripped: false,
    safetyCauses: [],
    fault: null,
    placed: [],
    taken: input.taken.slice(-historyLength),
    pickupBays: input.pickupBays,
    move: null,
    lastOrderId: null,
    completed: [],
    doorOrderId: null,
    takenOrderId: null,
    homingRequested: false,
    doorTimeoutMs: input.doorTimeoutMs,
    doorTravelMs: input.doorTravelMs,
    deadlineFactor: input.deadlineFactor,
    minDeadlineMs: input.minDeadlineMs,
    travelTimeMs: input.travelTimeMs,
  }),
  invoke: [{ src: "watchSensors" }, { src: "watchSafety" }],
  on: {
    SENSORS: { actions: "assignSensors" },
    SAFETY: { actions: "assignSafety" },
  },
  initial: "starting",
  states: {
    starting: {
      always: [
        {
          guard: "positionUnknown",
          target: "fault",
          actions: ["faultUnknownPosition", "publishFault"],
        },
        // A restart found the door open: let it time out and close.
        { guard: "doorSensedOpen", target: "door.open" },
        { target: "idle" },
      ],
    },
    idle: {
      tags: ["safe"],
      on: {
        MOVE: [
          {
            guard: and(["moveAllowed", "moveIsNoop"]),
            actions: ["assignMove", "recordArrival", "publishMoved", "clearMove"],
          },
          { guard: "moveAllowed", target: "moving", actions: "assignMove" },
        ],
        OPEN_DOOR: { guard: "doorAllowed", target: "door", actions: "assignDoorOrder" },
      },
    },
    moving: {
      invoke: {
        src: "moveArm",
        input: ({ context }) => ({ to: currentLeg(context)?.to ?? context.position }),
        onDone: [
          { guard: "moreLegs", target: "moving", reenter: true, actions: "nextLeg" },
          { target: "idle", actions: ["recordArrival", "publishMoved", "clearMove"] },
        ],
        onError: legFaults.onError,
      },
      after: legFaults.after,
      on: legFaults.on,
    },
    homing: {
      invoke: {
        src: "moveArm",
        input: ({ context }) => ({ to: currentLeg(context)?.to ?? "HOME" }),
        onDone: { target: "idle", actions: ["recordArrival", "clearMove"] },
        onError: legFaults.onError,
      },
      after: legFaults.after,
      on: legFaults.on,
    },
    door: {
      initial: "opening",
      on: {
        SENSORS: {
          guard: "pizzaLeft",
          actions: ["noteTaken", "journalTaken", "assignSensors"],
        },
      },
      states: {
        opening: {
          invoke: {
            src: "driveDoor",
            input: { open: true },
            onDone: [
              { guard: "takenNoted", target: "closing", actions: "publishDoorOpen" },
              { target: "open", actions: "publishDoorOpen" },
            ],
            onError: doorJam(true),
          },
          after: { doorDeadline: doorJam(true) },
        },
        open: {
          after: { doorTimeout: { target: "closing" } },
          on: {
            SENSORS: {
              guard: "pizzaLeft",
              target: "closing",
              actions: ["noteTaken", "journalTaken", "assignSensors"],
            },
          },
        },
        closing: {
          invoke: {
            src: "driveDoor",
            input: { open: false },
            onDone: [
              {
                guard: "hasFault",
                target: "#arm.fault",
                actions: ["publishDoorClosed", "publishTaken", "clearDoor"],
              },
              {
                guard: "homingRequested",
                target: "#arm.homing",
                actions: ["publishDoorClosed", "publishTaken", "clearDoor", "assignHoming"],
              },
              {
                target: "#arm.idle",
                actions: ["publishDoorClosed", "publishTaken", "clearDoor"],
              },
            ],
            onError: doorJam(false),
          },
          after: { doorDeadline: doorJam(false) },
        },
      },
    },
    fault: {
      tags: ["fault"],
      entry: "stopDriver",
      on: {
        RESET: [
          {
            guard: and(["resetAllowed", "doorSensedOpen"]),
            target: "door.closing",
            actions: ["clearFault", "requestHoming"],
          },
          { guard: "resetAllowed", target: "homing", actions: ["clearFault", "assignHoming"] },
        ],
        // The arm stands still: a customer may still fetch a pizza already in the pickup area.
        OPEN_DOOR: { guard: "doorAllowed", target: "door", actions: "assignDoorOrder" },
      },
    },
  },
});

/** A snapshot of the arm machine. */
export type ArmSnapshot = SnapshotFrom<typeof armMachine>;
