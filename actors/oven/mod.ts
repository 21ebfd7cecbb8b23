/**
 * The oven actor's host: binds the oven machine to its driver (thermocouple
 * samples in, heater power out) and to the bus (`protocol/oven.ts` commands
 * and events, the order queue for preheating, safety trips for power cuts).
 */
import { createActor, fromCallback } from "xstate";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import type { OvenDriver } from "../../hardware/oven.ts";
import { fail, ok, type Result } from "../../protocol/define.ts";
import type { CookingSession } from "../../protocol/entities.ts";
import * as common from "../../protocol/common.ts";
import * as oven from "../../protocol/oven.ts";
import * as order from "../../protocol/order.ts";
import * as safety from "../../protocol/safety.ts";
import {
  heatTargetC,
  lastEndedSession,
  type OvenContext,
  type OvenEvent,
  type OvenLimits,
  ovenMachine,
  type OvenSnapshot,
  ovenStateOf,
  sessionOf,
} from "./machine.ts";
import { defaultPidGains, type PidGains } from "./pid.ts";
import { startControlLoop } from "./control_loop.ts";

export { defaultOvenLimits, type OvenLimits } from "./machine.ts";
export { defaultPidGains, type PidGains } from "./pid.ts";

/** Tuning of the oven actor; the defaults suit the simulated oven. */
export interface OvenOptions {
  gains?: PidGains;
  limits?: Partial<OvenLimits>;
  /** Control period while a pizza cooks, in clock ms (default 100, seed §6.1). */
  cookingPeriodMs?: number;
  /** Control period without a session: preheating, holding, off (default 1000). */
  idlePeriodMs?: number;
}

/** The oven's status as the `status` command reports it. */
export function ovenStatusOf(snapshot: OvenSnapshot): oven.OvenStatus {
  const c = snapshot.context;
  return {
    state: ovenStateOf(snapshot),
    temperatureC: c.temperatureC,
    targetC: heatTargetC(c),
    heaterPct: c.heaterPct,
    session: c.session?.record ?? null,
    fault: c.fault ? { code: c.fault.code, message: c.fault.message, at: c.fault.at } : null,
  };
}

/**
 * Starts the oven actor on `driver`: its control loop steers the heater every
 * 100 ms while a pizza cooks (every second otherwise); its machine serves
 * `protocol/oven.ts` and publishes its events. `stop()` turns the heater off.
 */
export function startOven(
  ctx: ActorContext,
  driver: OvenDriver,
  options: OvenOptions = {},
): RunningActor {
  const { bus, clock, random } = ctx;
  const log = ctx.log.child("oven");

  /** An effect that fails is logged; it must never take the oven's control loop down. */
  const safely = <A extends unknown[]>(name: string, fn: (...args: A) => void) => (...args: A) => {
    try {
      fn(...args);
    } catch (err) {
      log.log("error", "oven effect failed", { effect: name, err: String(err) });
    }
  };

  const writeHeater = (pct: number) => {
    driver.setHeaterPct(pct).catch((err: unknown) => {
      log.log("error", "heater write failed", { pct, err: String(err) });
    });
  };

  const publishProgress = (session: CookingSession) => {
    bus.publish(oven.progress, {
      orderId: session.orderId,
      sessionId: session.sessionId,
      temperatureC: session.currentTemperatureC,
      timeRemainingMs: session.timeRemainingMs,
      status: session.status,
    }, session.orderId);
  };

  const sensor = fromCallback<OvenEvent>(({ sendBack }) =>
    startControlLoop({
      clock,
      driver,
      gains: options.gains ?? defaultPidGains,
      log,
      context: () => actor.getSnapshot().context,
      send: sendBack,
      cookingPeriodMs: options.cookingPeriodMs ?? 100,
      idlePeriodMs: options.idlePeriodMs ?? 1000,
    })
  );

  const machine = ovenMachine.provide({
    actors: { sensor },
    actions: {
      applyHeater: safely("applyHeater", ({ context }: { context: OvenContext }) => {
        writeHeater(context.heaterPct);
      }),
      publishTemperature: safely("publishTemperature", ({ context }: { context: OvenContext }) => {
        bus.publish(oven.temperature, {
          temperatureC: context.temperatureC,
          targetC: heatTargetC(context),
          heaterPct: context.heaterPct,
          state: context.fault ? "fault" : ovenStateOf(actor.getSnapshot()),
        });
      }),
      publishProgress: safely("publishProgress", ({ context }: { context: OvenContext }) => {
        if (context.session) publishProgress(context.session.record);
      }),
      publishSessionEnded: safely(
        "publishSessionEnded",
        ({ context }: { context: OvenContext }) => {
          const ended = lastEndedSession(context);
          if (ended) publishProgress(ended);
        },
      ),
      publishCooked: safely("publishCooked", ({ context }: { context: OvenContext }) => {
        const ended = lastEndedSession(context);
        if (!ended || ended.status !== "COMPLETE") return;
        log.log("info", "pizza cooked", { orderId: ended.orderId, sessionId: ended.sessionId });
        bus.publish(oven.cooked, { orderId: ended.orderId, session: ended }, ended.orderId);
      }),
      publishFault: safely("publishFault", ({ context }: { context: OvenContext }) => {
        const fault = context.fault;
        if (!fault) return;
        const orderId = fault.activeOrderId ?? undefined;
        log.log("error", "oven fault", { code: fault.code, message: fault.message, orderId });
        bus.publish(oven.fault, {
          code: fault.code,
          message: fault.message,
          temperatureC: context.temperatureC,
          activeOrderId: fault.activeOrderId,
        }, orderId);
        bus.publish(common.alert.oven, {
          alertId: random.uuid(),
          type: fault.code === "OVER_TEMPERATURE" ? "TEMPERATURE_ISSUE" : "EQUIPMENT_FAILURE",
          severity: "CRITICAL",
          message: `Oven fault ${fault.code}: ${fault.message}`,
          resolved: false,
          createdAt: fault.at,
          resolvedAt: null,
          ...(orderId ? { orderId } : {}),
        }, orderId);
        const ended = lastEndedSession(context);
        if (ended && ended.orderId === fault.activeOrderId) publishProgress(ended);
      }),
    },
  });

  const actor = createActor(machine, {
    clock,
    systemId: "oven",
    input: {
      machineId: bus.machineId,
      utcOffsetMin: ctx.config.utcOffsetMin,
      ...(options.limits ? { limits: options.limits } : {}),
    },
  });

  let lastState: oven.OvenState | null = null;
  let failed = false;
  actor.subscribe({
    next: (snapshot) => {
      const state = ovenStateOf(snapshot);
      if (state === lastState) return;
      log.log("info", "oven state", {
        from: lastState,
        to: state,
        targetC: heatTargetC(snapshot.context),
      });
      lastState = state;
    },
    error: (err) => {
      failed = true;
      // The machine is gone: make sure it left the heater off.
      writeHeater(0);
      log.log("error", "oven actor failed", { err: String(err) });
    },
  });
  actor.start();

  const status = (): oven.OvenStatus => ovenStatusOf(actor.getSnapshot());

  const cookRefusal = (snapshot: OvenSnapshot, orderId: string): string => {
    const c = snapshot.context;
    if (c.fault) {
      return `Oven is in fault "${c.fault.code}" (${c.fault.message}); cannot cook order "${orderId}"`;
    }
    if (c.session) {
      return `Oven is cooking order "${c.session.record.orderId}"; order "${orderId}" must wait`;
    }
    if (c.lastSampleMs === null) {
      return `Oven has no thermocouple reading yet; cannot cook order "${orderId}"`;
    }
    return `Oven cannot cook order "${orderId}" in state "${ovenStateOf(snapshot)}"`;
  };

  const unsubscribes = [
    bus.serve(oven.cook, (req): Result<CookingSession> => {
      const snapshot = actor.getSnapshot();
      const known = sessionOf(snapshot.context, req.orderId);
      if (known) return ok(known);
      const event: OvenEvent = {
        type: "COOK",
        orderId: req.orderId,
        pizzaId: req.pizzaId,
        targetC: req.targetC,
        cookTimeMs: req.cookTimeMs,
        sessionId: random.uuid(),
        nowMs: clock.now(),
      };
      if (!snapshot.can(event)) return fail("CONFLICT", cookRefusal(snapshot, req.orderId));
      actor.send(event);
      const session = actor.getSnapshot().context.session?.record;
      if (!session) {
        return fail("INTERNAL", `Oven did not start a session for order "${req.orderId}"`);
      }
      log.log("info", "cooking session started", {
        orderId: req.orderId,
        sessionId: session.sessionId,
        targetC: req.targetC,
        cookTimeMs: req.cookTimeMs,
      });
      return ok(session);
    }),

    bus.serve(oven.abort, (req): Result<oven.OvenStatus> => {
      const snapshot = actor.getSnapshot();
      if (!sessionOf(snapshot.context, req.orderId)) {
        return fail("NOT_FOUND", `Oven has no session for order "${req.orderId}"`);
      }
      const event: OvenEvent = { type: "ABORT", orderId: req.orderId, nowMs: clock.now() };
      if (snapshot.can(event)) {
        actor.send(event);
        log.log("info", "cooking session aborted", { orderId: req.orderId });
      }
      return ok(status());
    }),

    bus.serve(oven.preheat, (req): Result<oven.OvenStatus> => {
      const snapshot = actor.getSnapshot();
      const event: OvenEvent = { type: "PREHEAT", targetC: req.targetC, nowMs: clock.now() };
      if (!snapshot.can(event)) {
        return fail(
          "CONFLICT",
          `Oven cannot preheat to ${req.targetC} °C while ${ovenStateOf(snapshot)}` +
            (snapshot.context.session ? ` order "${snapshot.context.session.record.orderId}"` : ""),
        );
      }
      actor.send(event);
      log.log("info", "standby target set by hand", { targetC: req.targetC });
      return ok(status());
    }),

    bus.serve(oven.status, () => ok(status())),

    bus.serve(oven.reset, (): Result<oven.OvenStatus> => {
      const snapshot = actor.getSnapshot();
      const c = snapshot.context;
      if (!c.fault) return ok(status());
      const event: OvenEvent = { type: "RESET", nowMs: clock.now() };
      if (!snapshot.can(event)) {
        return fail(
          "CONFLICT",
          c.safetyTripped
            ? `Oven fault "${c.fault.code}" cannot be reset while safety is tripped`
            : `Oven fault "${c.fault.code}" cannot be reset: thermocouple reads ${c.temperatureC} °C, outside ${c.limits.readingMinC}..${c.limits.readingMaxC} °C`,
        );
      }
      actor.send(event);
      return ok(status());
    }),

    bus.subscribe(order.queue, bus.machineId, (msg) => {
      actor.send({ type: "QUEUE", length: msg.length, nowMs: clock.now() });
    }),
    bus.subscribe(safety.tripped, bus.machineId, () => {
      actor.send({ type: "SAFETY_TRIPPED", nowMs: clock.now() });
    }),
    bus.subscribe(safety.state, bus.machineId, (msg) => {
      // The monitor repeats its state; a clear one the machine knows would change nothing.
      const snapshot = actor.getSnapshot();
      const known = !msg.status.tripped && !snapshot.context.safetyTripped;
      if (known && !snapshot.matches("fault")) return;
      actor.send({ type: "SAFETY_STATE", tripped: msg.status.tripped, nowMs: clock.now() });
    }),
  ];

  let stopped = false;
  return {
    state: () => stateString(actor.getSnapshot().value),
    alive: () => !stopped && !failed && actor.getSnapshot().status === "active",
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const unsubscribe of unsubscribes) unsubscribe();
      actor.stop();
      try {
        await driver.setHeaterPct(0);
      } catch (err) {
        log.log("error", "heater off on stop failed", { err: String(err) });
      }
    },
  };
}
