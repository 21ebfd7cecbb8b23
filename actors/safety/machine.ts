/**
 * The safety monitor's state machine: watches the inputs, latches trips, and
 * holds its own outputs (heater power cut, arm halt) until a technician resets
 * it with every cause cleared. It never restarts anything by itself: a reset
 * only re-enables the outputs.
 */
import { assign, fromCallback, setup, type SnapshotFrom } from "xstate";
import type { SafetyInput, SafetyOutputs, SafetyReading } from "../../hardware/safety.ts";
import type { SafetyStatus, TripCause } from "../../protocol/safety.ts";

/**
 * Trip above this independent oven reading. The oven's own software limit is
 * lower, so this fires only when the oven's control has failed.
 */
export const OVEN_OVER_TEMPERATURE_C = 300;
/** Refrigerated storage must stay at or below this (HACCP §6.7). */
export const STORAGE_LIMIT_C = 8;
/**
 * How long storage may stay above its limit without a break before it trips:
 * the restock grace. Opening the storage to restock warms it for a while;
 * 30 min continuously above 8 °C means the fridge has failed, and the food in
 * it must not be sold. The sale of single pizzas is guarded by the order's own
 * expiry and discard rules; this only stops the machine.
 */
export const STORAGE_GRACE_MS = 30 * 60_000;
/**
 * The analog inputs and the outputs' readback are polled this often; discrete
 * inputs (e-stop, doors, smoke) arrive as changes the moment the driver sees
 * them, so the poll only has to outrun heat, which moves by degrees per second.
 */
export const POLL_PERIOD_MS = 500;
/** A poll that changes nothing the monitor acts on reaches the machine only this often. */
export const QUIET_POLL_MS = 5000;
/** The first reading must arrive within this, or the monitor trips. */
export const STARTUP_DEADLINE_MS = 5000;
/** This many failed polls in a row trip the monitor: it can no longer see its inputs. */
export const IO_LOST_POLLS = 4;

/** What the machine is started with. */
export interface SafetyMachineInput {
  /** The clock's now, in epoch ms. */
  now: () => number;
}

/** Everything the monitor knows. */
export interface SafetyContext {
  now: () => number;
  /** The latest reading with input changes applied; temperatures are NaN until first read. */
  reading: SafetyReading;
  /** Since when storage has been above its limit without a break; null when it is not. */
  storageWarmSinceMs: number | null;
  /** Clock time of the latest reading or input change. */
  seenAtMs: number;
  /** At least one read succeeded. */
  polled: boolean;
  /** Failed reads in a row. */
  pollFailures: number;
  /** Causes latched since the last reset. */
  causes: TripCause[];
  latchedAt: number | null;
  /** Causes the latest trip added, for its announcement. */
  newCauses: TripCause[];
  /** Why the latest trip latched, when no input explains it. */
  tripNote: string | null;
  /** The outputs as last commanded. */
  outputs: SafetyOutputs;
}

/** Events the monitor reacts to. */
export type SafetyEvent =
  | { type: "INPUT_CHANGED"; input: SafetyInput; value: boolean }
  | { type: "POLLED"; reading: SafetyReading }
  | { type: "POLL_FAILED"; error: string }
  | { type: "RESET"; performedBy: string };

const unknownReading: SafetyReading = {
  estop: false,
  serviceDoorOpen: false,
  pickupDoorOpen: false,
  smoke: false,
  ovenTempC: Number.NaN,
  storageTempC: Number.NaN,
  outputs: { heaterPowerCut: false, armHalt: false },
};

/** The causes whose input is active in `context`, in the protocol's order. */
export function activeCauses(context: SafetyContext): TripCause[] {
  const r = context.reading;
  const active: TripCause[] = [];
  if (r.estop) active.push("ESTOP");
  if (r.serviceDoorOpen) active.push("SERVICE_DOOR");
  if (r.ovenTempC > OVEN_OVER_TEMPERATURE_C) active.push("OVEN_OVER_TEMPERATURE");
  if (r.smoke) active.push("SMOKE");
  if (
    context.storageWarmSinceMs !== null &&
    context.seenAtMs - context.storageWarmSinceMs > STORAGE_GRACE_MS
  ) active.push("STORAGE_DANGER_ZONE");
  return active;
}

/**
 * What of a reading the machine acts on: the discrete inputs, the outputs'
 * readback and which side of its limit each temperature is. Two readings with
 * the same key lead the machine to the same place.
 */
export function readingKey(r: SafetyReading): string {
  const side = (c: number, limitC: number) => Number.isNaN(c) ? "?" : c > limitC ? "+" : "-";
  return `${+r.estop}${+r.serviceDoorOpen}${+r.pickupDoorOpen}${+r.smoke}` +
    `${+r.outputs.heaterPowerCut}${+r.outputs.armHalt}` +
    side(r.ovenTempC, OVEN_OVER_TEMPERATURE_C) + side(r.storageTempC, STORAGE_LIMIT_C);
}

/** The context after `event` is recorded (pure apart from reading the clock). */
function recorded(context: SafetyContext, event: SafetyEvent): SafetyContext {
  const seenAtMs = context.now();
  switch (event.type) {
    case "INPUT_CHANGED":
      return {
        ...context,
        seenAtMs,
        reading: { ...context.reading, [event.input]: event.value },
      };
    case "POLLED": {
      const warm = event.reading.storageTempC > STORAGE_LIMIT_C;
      return {
        ...context,
        seenAtMs,
        reading: event.reading,
        storageWarmSinceMs: warm ? (context.storageWarmSinceMs ?? seenAtMs) : null,
        polled: true,
        pollFailures: 0,
      };
    }
    case "POLL_FAILED":
      return { ...context, pollFailures: context.pollFailures + 1 };
    case "RESET":
      return context;
  }
}

function addsCause(context: SafetyContext, event: SafetyEvent): boolean {
  return activeCauses(recorded(context, event)).some((c) => !context.causes.includes(c));
}

/** The monitor's status as the protocol reports it. */
export function statusOf(snapshot: SnapshotFrom<typeof safetyMachine>): SafetyStatus {
  const c = snapshot.context;
  return {
    tripped: snapshot.matches("tripped"),
    causes: [...c.causes],
    activeInputs: activeCauses(c),
    latchedAt: c.latchedAt,
    heaterPowerCut: c.outputs.heaterPowerCut,
    armHalted: c.outputs.armHalt,
    pickupDoorOpen: c.reading.pickupDoorOpen,
  };
}

/** Why a reset is refused now, or null when it may go ahead. */
export function resetRefusal(context: SafetyContext): string | null {
  const active = activeCauses(context);
  if (active.length > 0) {
    return `Reset refused: inputs still active: ${active.map((c) => `"${c}"`).join(", ")}`;
  }
  if (!context.polled || context.pollFailures > 0) {
    return `Reset refused: the safety inputs are not readable (${context.pollFailures} failed reads in a row)`;
  }
  return null;
}

/**
 * The safety monitor. `inputs` (a stream of INPUT_CHANGED, POLLED and
 * POLL_FAILED), `driveOutputs`, `announceTrip` and `announceReset` are
 * placeholders the host provides.
 */
export const safetyMachine = setup({
  types: {
    context: {} as SafetyContext,
    events: {} as SafetyEvent,
    input: {} as SafetyMachineInput,
    tags: {} as "safe",
  },
  actors: {
    inputs: fromCallback<SafetyEvent>(() => {}),
  },
  delays: {
    startupDeadline: STARTUP_DEADLINE_MS,
  },
  guards: {
    tripsWithEvent: ({ context, event }) => activeCauses(recorded(context, event)).length > 0,
    addsCauseWithEvent: ({ context, event }) => addsCause(context, event),
    outputsFoundCut: ({ event }) =>
      event.type === "POLLED" &&
      (event.reading.outputs.heaterPowerCut ||
        (event.reading.outputs.armHalt && !event.reading.pickupDoorOpen)),
    ioLost: ({ context }) => context.pollFailures + 1 >= IO_LOST_POLLS,
    resettable: ({ context }) => resetRefusal(context) === null,
  },
  actions: {
    record: assign(({ context, event }) => recorded(context, event)),
    latch: assign(({ context }) => {
      const newCauses = activeCauses(context).filter((c) => !context.causes.includes(c));
      return {
        causes: [...context.causes, ...newCauses],
        newCauses,
        latchedAt: context.latchedAt ?? context.now(),
      };
    }),
    note: assign((_, params: { text: string }) => ({ tripNote: params.text })),
    clearNote: assign({ tripNote: null }),
    clearLatch: assign({ causes: [], newCauses: [], latchedAt: null, tripNote: null }),
    cutOutputs: assign({ outputs: { heaterPowerCut: true, armHalt: true } }),
    interlockOutputs: assign(({ context }) => ({
      outputs: { heaterPowerCut: false, armHalt: context.reading.pickupDoorOpen },
    })),
    driveOutputs: () => {},
    announceTrip: () => {},
    announceReset: (_, _params: { performedBy: string }) => {},
  },
}).createMachine({
  id: "safety",
  context: ({ input }) => ({
    now: input.now,
    reading: unknownReading,
    storageWarmSinceMs: null,
    seenAtMs: input.now(),
    polled: false,
    pollFailures: 0,
    causes: [],
    latchedAt: null,
    newCauses: [],
    tripNote: null,
    outputs: { heaterPowerCut: false, armHalt: false },
  }),
  // The inputs run in every state: a dead stream would blind the monitor.
  invoke: { id: "inputs", src: "inputs" },
  initial: "starting",
  states: {
    // Outputs are left as they are until the first reading says what they must be.
    starting: {
      after: {
        startupDeadline: {
          target: "tripped",
          actions: { type: "note", params: { text: "no reading of the safety inputs at start" } },
        },
      },
      on: {
        POLLED: [
          { guard: "tripsWithEvent", target: "tripped", actions: "record" },
          {
            // A previous run latched and died: its trip holds until a reset.
            guard: "outputsFoundCut",
            target: "tripped",
            actions: [
              "record",
              { type: "note", params: { text: "outputs found cut at start (latched before)" } },
            ],
          },
          { target: "armed", actions: "record" },
        ],
        INPUT_CHANGED: [
          { guard: "tripsWithEvent", target: "tripped", actions: "record" },
          { actions: "record" },
        ],
        POLL_FAILED: { actions: "record" },
      },
    },
    armed: {
      entry: ["interlockOutputs", "driveOutputs"],
      on: {
        INPUT_CHANGED: [
          { guard: "tripsWithEvent", target: "tripped", actions: "record" },
          { actions: ["record", "interlockOutputs", "driveOutputs"] },
        ],
        POLLED: [
          { guard: "tripsWithEvent", target: "tripped", actions: "record" },
          { actions: ["record", "interlockOutputs", "driveOutputs"] },
        ],
        POLL_FAILED: [
          {
            guard: "ioLost",
            target: "tripped",
            actions: [
              "record",
              { type: "note", params: { text: "the safety inputs are no longer readable" } },
            ],
          },
          { actions: "record" },
        ],
      },
    },
    tripped: {
      tags: ["safe"],
      entry: ["latch", "cutOutputs", "driveOutputs", "announceTrip", "clearNote"],
      on: {
        INPUT_CHANGED: [
          { guard: "addsCauseWithEvent", actions: ["record", "latch", "announceTrip"] },
          { actions: "record" },
        ],
        // Each reading re-drives the outputs, so a wire found released is cut again.
        POLLED: [
          {
            guard: "addsCauseWithEvent",
            actions: ["record", "latch", "driveOutputs", "announceTrip"],
          },
          { actions: ["record", "driveOutputs"] },
        ],
        POLL_FAILED: { actions: "record" },
        RESET: {
          guard: "resettable",
          target: "armed",
          actions: [
            {
              type: "announceReset",
              params: ({ event }) => ({ performedBy: event.performedBy }),
            },
            "clearLatch",
          ],
        },
      },
    },
  },
});
