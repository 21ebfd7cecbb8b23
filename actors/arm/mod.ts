/**
 * The arm actor's host: binds the arm machine to its driver and the bus. Serves
 * `protocol/arm.ts` commands, publishes its events, and listens to the safety
 * monitor so the arm never moves while safety is tripped.
 */
import { createActor, fromCallback, fromPromise } from "xstate";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import type { ArmDriver } from "../../hardware/arm.ts";
import * as arm from "../../protocol/arm.ts";
import * as safety from "../../protocol/safety.ts";
import { alert } from "../../protocol/common.ts";
import {
  type CommandReply,
  type EventPayload,
  fail,
  ok,
  type Result,
} from "../../protocol/define.ts";
import type { ArmPosition } from "../../protocol/arm.ts";
import { type ArmContext, type ArmEvent, armMachine, type ArmSnapshot } from "./machine.ts";
import { doorRefusal, haltReason, moveRefusal, resetRefusal } from "./rules.ts";
import { TakenStore } from "./taken_store.ts";
import type { Journal } from "../../journal/journal.ts";

export { armMachine, type ArmSnapshot } from "./machine.ts";

/** Options of {@linkcode startArm}. */
export interface ArmOptions {
  /** The machine's journal: taken pizzas are recorded in it. */
  journal: Journal;
  /** The door closes after this long when the customer does not take the pizza (default 60 s). */
  doorTimeoutMs?: number;
  /** A move or door stroke faults after this many times its nominal time (default 3). */
  deadlineFactor?: number;
  /** No deadline is shorter than this (default 2000 ms). */
  minDeadlineMs?: number;
}

/** The arm's status as `arm.status` reports it. */
export function armStatus(s: ArmSnapshot): arm.ArmStatus {
  const c = s.context;
  return {
    state: stateString(s.value),
    position: c.position,
    orderId: c.move?.orderId ?? c.lastOrderId,
    moving: s.matches("moving") || s.matches("homing"),
    doorOpen: c.sensors.doorOpen,
    pizzaInPickup: c.sensors.pizzasInPickup > 0,
    halted: haltReason(c) !== null || c.sensors.doorOpen || s.matches("door"),
    fault: c.fault,
    doorOrderId: c.doorOrderId,
    // Taken counts once the door closed, as for the `taken` event: until then the arm is busy.
    taken: c.taken.filter((o) => o !== c.takenOrderId),
  };
}

/** Why the arm is busy with something else than standing still, or null. */
function busyReason(s: ArmSnapshot): string | null {
  const c = s.context;
  if (s.matches("moving")) {
    return `Arm is busy moving order "${c.move?.orderId}" to "${c.move?.to}"`;
  }
  if (s.matches("homing")) return "Arm is busy homing";
  if (s.matches("door")) {
    return `Pickup door is ${stateString(s.value).replace("door.", "")} for order "${
      c.doorOrderId ?? "none"
    }"`;
  }
  if (s.matches("starting")) return "Arm is starting";
  return null;
}

function moveConflict(
  s: ArmSnapshot,
  req: { orderId: string; from: ArmPosition; to: ArmPosition },
): string | null {
  const c = s.context;
  if (c.fault) return moveRefusal(c, req);
  // The door first: while it is open the safety interlock also asserts the halt output.
  const busy = busyReason(s);
  if (busy) return s.matches("door") ? `Arm cannot move: ${busy}` : busy;
  return moveRefusal(c, req);
}

function doorConflict(s: ArmSnapshot, orderId: string): string | null {
  const halt = haltReason(s.context);
  if (halt) return `Pickup door cannot open: ${halt}`;
  const busy = busyReason(s);
  if (busy) return `Pickup door cannot open now: ${busy}`;
  return doorRefusal(s.context, orderId);
}

/**
 * Starts the arm actor on `driver`: serves `arm.move`, `arm.open_door`,
 * `arm.status` and `arm.reset`, and publishes `moved`, `door`, `taken`,
 * `fault` and `alert.arm`.
 */
export function startArm(
  ctx: ActorContext,
  driver: ArmDriver,
  options: ArmOptions,
): RunningActor {
  const { bus, clock, random } = ctx;
  const log = ctx.log.child("arm");
  const takenStore = new TakenStore(options.journal);
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    pending.add(p);
    p.finally(() => pending.delete(p));
  };

  /** Fault alerts raised since the last reset; a reset publishes them resolved. */
  let openAlerts: EventPayload<typeof alert.arm>[] = [];

  const publishDoor = (open: boolean, orderId: string | null) => {
    log.log("info", `pickup door ${open ? "open" : "closed"}`, { orderId });
    bus.publish(arm.door, { open, orderId }, orderId ?? undefined);
  };

  const publishFault = (c: ArmContext) => {
    if (!c.fault) return;
    const activeOrderId = c.move?.orderId ?? null;
    const orderId = activeOrderId ?? undefined;
    log.log("error", "arm fault", { code: c.fault.code, message: c.fault.message, activeOrderId });
    bus.publish(arm.fault, { ...c.fault, activeOrderId }, orderId);
    const raised: EventPayload<typeof alert.arm> = {
      alertId: random.uuid(),
      type: "EQUIPMENT_FAILURE",
      severity: c.fault.code === "HALTED" ? "WARNING" : "CRITICAL",
      message: `Arm fault ${c.fault.code}: ${c.fault.message}`,
      resolved: false,
      createdAt: clock.now(),
      resolvedAt: null,
      ...(orderId ? { orderId } : {}),
    };
    openAlerts.push(raised);
    bus.publish(alert.arm, raised, orderId);
  };

  const resolveAlerts = () => {
    const resolvedAt = clock.now();
    for (const a of openAlerts) {
      bus.publish(alert.arm, { ...a, severity: "INFO", resolved: true, resolvedAt }, a.orderId);
    }
    openAlerts = [];
  };

  const machine = armMachine.provide({
    actors: {
      moveArm: fromPromise<void, { to: ArmPosition }>(({ input, signal }) =>
        driver.moveTo(input.to, signal)
      ),
      driveDoor: fromPromise<void, { open: boolean }>(({ input, signal }) =>
        driver.setDoor(input.open, signal)
      ),
      watchSensors: fromCallback<ArmEvent>(({ sendBack }) =>
        driver.subscribe((sensors) => sendBack({ type: "SENSORS", sensors }))
      ),
      watchSafety: fromCallback<ArmEvent>(({ sendBack }) => {
        let heard = false;
        let stopped = false;
        const offTripped = bus.subscribe(safety.tripped, bus.machineId, (msg) => {
          heard = true;
          sendBack({ type: "SAFETY", tripped: true, causes: msg.causes });
        });
        const offState = bus.subscribe(safety.state, bus.machineId, (msg) => {
          heard = true;
          sendBack({ type: "SAFETY", tripped: msg.status.tripped, causes: msg.status.causes });
        });
        // Events tell us of changes; the query covers a trip latched before we started.
        track(
          bus.request(safety.status, {}, { timeoutMs: 2_000 }).then((r) => {
            if (r.ok && !heard && !stopped) {
              sendBack({ type: "SAFETY", tripped: r.value.tripped, causes: r.value.causes });
            }
          }).catch((err: unknown) => {
            log.log("warn", "safety status query failed", { err: String(err) });
          }),
        );
        return () => {
          stopped = true;
          offTripped();
          offState();
        };
      }),
    },
    actions: {
      stopDriver: () => driver.stop(),
      publishMoved: ({ context }) => {
        const m = context.move;
        if (!m?.orderId) return;
        log.log("info", "arm moved", { orderId: m.orderId, position: m.to });
        bus.publish(arm.moved, { orderId: m.orderId, position: m.to }, m.orderId);
      },
      publishDoorOpen: ({ context }) => publishDoor(true, context.doorOrderId),
      publishDoorClosed: ({ context }) => publishDoor(false, context.doorOrderId),
      journalTaken: ({ context }) => {
        if (context.takenOrderId) takenStore.add(context.takenOrderId, clock.now());
      },
      publishTaken: ({ context }) => {
        const orderId = context.takenOrderId;
        if (!orderId) return;
        log.log("info", "pizza taken", { orderId });
        bus.publish(arm.taken, { orderId }, orderId);
      },
      publishFault: ({ context }) => publishFault(context),
    },
  });

  const actor = createActor(machine, {
    clock,
    input: {
      position: driver.position(),
      sensors: driver.read(),
      pickupBays: ctx.config.pickupBays,
      doorTimeoutMs: options.doorTimeoutMs ?? 60_000,
      doorTravelMs: driver.doorTravelMs,
      deadlineFactor: options.deadlineFactor ?? 3,
      minDeadlineMs: options.minDeadlineMs ?? 2_000,
      travelTimeMs: (from, to) => driver.travelTimeMs(from, to),
      taken: takenStore.recent(),
    },
  });
  actor.subscribe({
    error: (err) => log.log("error", "arm actor failed", { err: String(err) }),
  });
  actor.start();
  const snap = () => actor.getSnapshot();

  const serving = [
    bus.serve(arm.move, (req): Result<CommandReply<typeof arm.move>> => {
      const s = snap();
      const c = s.context;
      const same = (m: { orderId: string | null; to: ArmPosition }) =>
        m.orderId === req.orderId && m.to === req.to;
      if (s.matches("moving") && c.move && same(c.move)) {
        return ok({ status: "RUNNING", position: c.position });
      }
      if (c.completed.some(same)) return ok({ status: "DONE", position: c.position });
      const conflict = moveConflict(s, req);
      if (conflict) return fail("CONFLICT", conflict);
      actor.send({ type: "MOVE", orderId: req.orderId, from: req.from, to: req.to });
      const after = snap();
      if (after.matches("moving")) {
        return ok({ status: "RUNNING", position: after.context.position });
      }
      if (after.context.completed.some(same)) {
        return ok({ status: "DONE", position: after.context.position });
      }
      return fail("CONFLICT", `Arm did not start the move (state "${stateString(after.value)}")`);
    }),
    bus.serve(arm.openDoor, (req) => {
      const s = snap();
      const opening = s.matches({ door: "opening" }) || s.matches({ door: "open" });
      if (opening && s.context.doorOrderId === req.orderId) return ok(armStatus(s));
      const conflict = doorConflict(s, req.orderId);
      if (conflict) return fail("CONFLICT", conflict);
      actor.send({ type: "OPEN_DOOR", orderId: req.orderId });
      const after = snap();
      return after.matches("door") ? ok(armStatus(after)) : fail(
        "CONFLICT",
        `Pickup door did not open (state "${stateString(after.value)}")`,
      );
    }),
    bus.serve(arm.status, () => ok(armStatus(snap()))),
    bus.serve(arm.reset, () => {
      const s = snap();
      if (!s.matches("fault")) {
        if (s.context.fault) {
          return fail("CONFLICT", `Arm fault can be reset once the pickup door closed`);
        }
        return ok(armStatus(s));
      }
      const refusal = resetRefusal(s.context);
      if (refusal) return fail("CONFLICT", refusal);
      log.log("info", "arm reset", { fault: s.context.fault });
      actor.send({ type: "RESET" });
      resolveAlerts();
      return ok(armStatus(snap()));
    }),
  ];

  return {
    state: () => stateString(snap().value),
    alive: () => snap().status === "active",
    async stop() {
      for (const off of serving) off();
      actor.stop();
      driver.stop();
      await Promise.allSettled([...pending]);
    },
  };
}
