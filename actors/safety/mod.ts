/**
 * The safety monitor's host: binds the machine to its IO and to the bus
 * (`protocol/safety.ts`). Stopping it leaves the outputs as they are, so a dead
 * monitor never releases a trip.
 */
import { createActor, fromCallback } from "xstate";
import { type Clock, every } from "../../clock/clock.ts";
import type { SafetyIo, SafetyReading } from "../../hardware/safety.ts";
import type { Logger } from "../../log/log.ts";
import { alert } from "../../protocol/common.ts";
import { fail, ok } from "../../protocol/define.ts";
import { reset, state, status, tripped } from "../../protocol/safety.ts";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import {
  POLL_PERIOD_MS,
  QUIET_POLL_MS,
  readingKey,
  resetRefusal,
  type SafetyEvent,
  safetyMachine,
  statusOf,
} from "./machine.ts";

export {
  IO_LOST_POLLS,
  OVEN_OVER_TEMPERATURE_C,
  POLL_PERIOD_MS,
  QUIET_POLL_MS,
  STARTUP_DEADLINE_MS,
  STORAGE_GRACE_MS,
  STORAGE_LIMIT_C,
} from "./machine.ts";

/** The state is published on every change and also this often. */
const STATE_PERIOD_MS = 15_000;

/**
 * Streams the IO into the machine: every input change at once, and a full read
 * now and every {@linkcode POLL_PERIOD_MS}, one at a time. A change heard while
 * a read is in flight wins over that read's older value. A read that changes
 * nothing the machine acts on ({@linkcode readingKey}) is passed on only every
 * {@linkcode QUIET_POLL_MS}, which still keeps the storage grace timing.
 */
function watchInputs(
  io: SafetyIo,
  clock: Clock,
  log: Logger,
  sendBack: (event: SafetyEvent) => void,
): () => void {
  let stopped = false;
  let inFlight = false;
  let failures = 0;
  const heardDuringRead = new Map<string, boolean>();
  let lastKey = "";
  let lastSentMs = -Infinity;
  const unsubscribe = io.onInputChange((input, value) => {
    if (stopped) return;
    if (inFlight) heardDuringRead.set(input, value);
    // The machine's reading moved: the next poll must reach it whatever its key.
    lastKey = "";
    sendBack({ type: "INPUT_CHANGED", input, value });
  });
  const poll = () => {
    if (inFlight || stopped) return;
    inFlight = true;
    heardDuringRead.clear();
    // A driver that throws instead of rejecting is an IO failure all the same.
    let read: Promise<SafetyReading>;
    try {
      read = io.read();
    } catch (err) {
      read = Promise.reject(err);
    }
    read.then(
      (reading) => {
        inFlight = false;
        if (stopped) return;
        if (failures > 0) log.log("info", "safety inputs readable again", { failures });
        const merged = heardDuringRead.size === 0
          ? { ...reading }
          : { ...reading, ...Object.fromEntries(heardDuringRead) };
        const key = readingKey(merged);
        const nowMs = clock.now();
        if (failures === 0 && key === lastKey && nowMs - lastSentMs < QUIET_POLL_MS) return;
        failures = 0;
        lastKey = key;
        lastSentMs = nowMs;
        sendBack({ type: "POLLED", reading: merged });
      },
      (err: unknown) => {
        inFlight = false;
        if (stopped) return;
        const error = err instanceof Error ? err.message : String(err);
        // One line per streak: a dead IO would otherwise log ten lines a second.
        if (failures++ === 0) log.log("warn", "safety inputs not readable", { error });
        sendBack({ type: "POLL_FAILED", error });
      },
    );
  };
  poll();
  const stopPolling = every(clock, POLL_PERIOD_MS, poll);
  return () => {
    stopped = true;
    stopPolling();
    unsubscribe();
  };
}

/**
 * Runs `fn` once the current call stack is done. Announcements wait for it so
 * that a remote IO's output command leaves first: the NATS client writes its
 * buffer in a microtask queued by the first message of a tick, and a trip's
 * announcements (three validated messages) would otherwise sit before it.
 */
function afterOutputs(fn: () => void): void {
  queueMicrotask(fn);
}

interface OpenAlert {
  alertId: string;
  message: string;
  createdAt: number;
}

/**
 * Starts the safety monitor on `io`: serves `safety.status` and `safety.reset`,
 * publishes `safety.state`, `safety.tripped` and `alert.safety`.
 *
 * @example
 * ```ts
 * const safety = startSafety(ctx, createLocalSafetyIo(plant));
 * plant.set("estop", true); // heaterPowerCut and armHalt are set on return
 * await safety.stop();     // outputs stay as they are
 * ```
 */
export function startSafety(ctx: ActorContext, io: SafetyIo): RunningActor {
  const { bus, clock, random } = ctx;
  const log: Logger = ctx.log.child("safety");
  /** Trip alerts raised since the last reset; a reset publishes them resolved. */
  let openAlerts: OpenAlert[] = [];

  const machine = safetyMachine.provide({
    actors: {
      inputs: fromCallback<SafetyEvent>(({ sendBack }) => watchInputs(io, clock, log, sendBack)),
    },
    actions: {
      driveOutputs: ({ context }) => {
        // A throwing driver must not kill the monitor; the next poll re-drives.
        try {
          io.setOutputs(context.outputs);
        } catch (err) {
          log.log("error", "safety outputs not driven", { err: String(err) });
        }
      },
      announceTrip: ({ context }) => {
        const latchedAt = context.latchedAt ?? clock.now();
        const causes = [...context.causes];
        const what = context.newCauses.length > 0
          ? context.newCauses.join(", ")
          : (context.tripNote ?? "unknown");
        const message = `Safety trip: ${what}; heater power cut and arm halted until reset`;
        const createdAt = clock.now();
        const alertId = random.uuid();
        openAlerts.push({ alertId, message, createdAt });
        const newCauses = [...context.newCauses];
        const note = context.tripNote;
        afterOutputs(() => {
          log.log("error", "safety trip", { causes, newCauses, note });
          bus.publish(tripped, { causes, latchedAt });
          bus.publish(alert.safety, {
            alertId,
            type: "SAFETY_TRIP",
            severity: "CRITICAL",
            message,
            resolved: false,
            createdAt,
            resolvedAt: null,
          });
        });
      },
      announceReset: ({ context }, params) => {
        const resolvedAt = clock.now();
        for (const a of openAlerts) {
          bus.publish(alert.safety, {
            alertId: a.alertId,
            type: "SAFETY_TRIP",
            severity: "INFO",
            message: `${a.message}; reset by ${params.performedBy}`,
            resolved: true,
            createdAt: a.createdAt,
            resolvedAt,
          });
        }
        openAlerts = [];
        log.log("info", "safety reset", {
          performedBy: params.performedBy,
          causes: context.causes,
        });
      },
    },
  });

  const actor = createActor(machine, { clock, input: { now: () => clock.now() } });
  let alive = true;
  let lastPublished = "";
  const publishState = (force: boolean) => {
    if (!alive) return;
    const current = statusOf(actor.getSnapshot());
    const json = JSON.stringify(current);
    if (!force && json === lastPublished) return;
    lastPublished = json;
    afterOutputs(() => bus.publish(state, { status: current }));
  };
  const subscription = actor.subscribe({
    next: () => publishState(false),
    error: (err) => {
      alive = false;
      log.log("error", "safety actor failed", { err: String(err) });
    },
  });
  actor.start();
  publishState(true);

  const stops = [
    every(clock, STATE_PERIOD_MS, () => publishState(true)),
    bus.serve(status, () => ok(statusOf(actor.getSnapshot()))),
    bus.serve(reset, (req) => {
      const snapshot = actor.getSnapshot();
      if (!alive) return fail("UNAVAILABLE", "Safety monitor is not running");
      if (snapshot.matches("starting")) {
        return fail("CONFLICT", "Reset refused: the safety monitor is still reading its inputs");
      }
      // Nothing latched: a repeated reset is answered with the state, not an error.
      if (!snapshot.matches("tripped")) return ok(statusOf(snapshot));
      const refusal = resetRefusal(snapshot.context);
      if (refusal) return fail("CONFLICT", refusal);
      actor.send({ type: "RESET", performedBy: req.performedBy });
      return ok(statusOf(actor.getSnapshot()));
    }),
  ];

  return {
    state: () => stateString(actor.getSnapshot().value),
    alive: () => alive && actor.getSnapshot().status === "active",
    stop() {
      for (const stop of stops) stop();
      subscription.unsubscribe();
      alive = false;
      // Stopping the machine stops the input stream; the outputs keep what they carry.
      actor.stop();
      return Promise.resolve();
    },
  };
}
