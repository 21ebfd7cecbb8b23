/**
 * The supervisor actor's host: binds the supervisor machine to the bus. It
 * hears every component's heartbeats, alerts and faults, serves
 * `protocol/supervisor.ts`, and publishes `machine` on every change and every
 * 5 s so that an actor started later learns the machine's status.
 */
import { createActor } from "xstate";
import { every } from "../../clock/clock.ts";
import type { Unsubscribe } from "../../bus/bus.ts";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import { Component, type EventDef, fail, ok } from "../../protocol/define.ts";
import { alert as alertOf, heartbeat } from "../../protocol/common.ts";
import * as arm from "../../protocol/arm.ts";
import * as oven from "../../protocol/oven.ts";
import * as payment from "../../protocol/payment.ts";
import * as safety from "../../protocol/safety.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import { findAlert } from "./alert_book.ts";
import { supervisorEffects } from "./effects.ts";
import { type HeardBeats, isRoutineBeat, type Tick, tickIsRoutine } from "./plans.ts";
import {
  machineView,
  type SupervisorEvent,
  supervisorMachine,
  supervisorStatus,
} from "./machine.ts";

export { decideRestart, defaultRestartIntensity } from "./restart_intensity.ts";
export type { RestartDecision, RestartIntensity } from "./restart_intensity.ts";
export { machineView, supervisorMachine } from "./machine.ts";

/** Options of {@linkcode startSupervisor}. */
export interface SupervisorOptions {
  /** A component silent for longer than this (clock ms) has failed; default 3000. */
  heartbeatTimeoutMs?: number;
}

/** What the oven's and the arm's fault events share. */
type OrderFault = { code: string; message: string; activeOrderId: string | null };

/** How often `machine` is published even without a change, in clock ms. */
export const machineRepublishMs = 30_000;

/**
 * Starts the supervisor on `ctx`'s bus: watches components, restarts failed
 * ones (at most 3 times in 60 s each), aborts orders stranded by faults or a
 * safety trip, ranks the machine's status and collects alerts.
 *
 * @throws {RangeError} When `heartbeatTimeoutMs` is not a positive number.
 * @example
 * ```ts
 * const sup = startSupervisor(ctx);
 * // ... later
 * await sup.stop();
 * ```
 */
export function startSupervisor(
  ctx: ActorContext,
  options: SupervisorOptions = {},
): RunningActor {
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 3_000;
  if (!Number.isFinite(heartbeatTimeoutMs) || heartbeatTimeoutMs <= 0) {
    throw new RangeError(
      `Supervisor heartbeatTimeoutMs must be a positive number, got "${heartbeatTimeoutMs}"`,
    );
  }
  const { bus, clock } = ctx;
  const log = ctx.log.child("supervisor");
  /** Routine beats since start, latest per component; ticks hand them to the machine. */
  let routineBeats: HeardBeats = {};
  const actor = createActor(
    supervisorMachine.provide({
      actors: supervisorEffects({ ...ctx, log }, {
        heard: () => routineBeats,
        tickIsRoutine: (tick: Tick): boolean => tickIsRoutine(actor.getSnapshot().context, tick),
      }),
    }),
    {
      clock,
      input: {
        machineId: bus.machineId,
        idPrefix: `sup-${ctx.random.uuid().slice(0, 8)}`,
        heartbeatTimeoutMs,
      },
    },
  );

  let running = true;
  let lastView = "";
  const publishView = (always: boolean) => {
    if (!running) return;
    const view = machineView(actor.getSnapshot());
    const key = `${view.status}|${view.reason}|${view.cashOnly}|${view.maintenance}`;
    if (!always && key === lastView) return;
    if (key !== lastView) log.log("info", "machine status", { ...view });
    lastView = key;
    bus.publish(supervisor.machine, view);
  };

  actor.subscribe({
    next: () => publishView(false),
    error: (err) => {
      running = false;
      log.log("error", "supervisor machine failed", { err: String(err) });
    },
  });
  actor.on("alert", ({ alert }) => {
    const { machineId: _, ...payload } = alert;
    bus.publish(alertOf.supervisor, payload, alert.orderId);
  });
  actor.on("notice", ({ level, msg, fields }) => log.log(level, msg, fields));

  const send = (event: SupervisorEvent) => {
    if (!running) return;
    actor.send(event);
  };
  const now = () => clock.now();
  // An event beats a start-up probe: the probe's answer may be older.
  const heard = { safety: false, reader: false };

  const subs: Unsubscribe[] = [];
  const mine = bus.machineId;
  subs.push(bus.subscribe(heartbeat, mine, (msg) => {
    if (!running) return;
    const watches = actor.getSnapshot().context.components;
    for (const beat of msg.beats) {
      if (isRoutineBeat(watches[beat.component], beat)) {
        routineBeats = { ...routineBeats, [beat.component]: now() };
        continue;
      }
      send({ type: "HEARTBEAT", ...beat, nowMs: now() });
    }
  }));
  for (const component of Component.options) {
    // Our own alerts come back on alert.supervisor; they are already in the book.
    if (component === "supervisor") continue;
    subs.push(bus.subscribe(alertOf[component], mine, (msg) =>
      send({
        type: "ALERT_IN",
        component,
        alert: {
          alertId: msg.alertId,
          type: msg.type,
          severity: msg.severity,
          message: msg.message,
          resolved: msg.resolved,
          createdAt: msg.createdAt,
          resolvedAt: msg.resolvedAt,
          ...(msg.orderId ? { orderId: msg.orderId } : {}),
        },
      })));
  }
  const watchFaults = <P extends OrderFault>(component: Component, fault: EventDef<P>) =>
    bus.subscribe(fault, mine, (msg) => {
      if (!msg.activeOrderId) return;
      send({
        type: "ORDER_FAULT",
        component,
        code: msg.code,
        message: msg.message,
        orderId: msg.activeOrderId,
        nowMs: now(),
      });
    });
  subs.push(watchFaults("oven", oven.fault), watchFaults("arm", arm.fault));
  subs.push(bus.subscribe(safety.tripped, mine, (msg) => {
    heard.safety = true;
    send({ type: "SAFETY", tripped: true, causes: msg.causes, nowMs: now() });
  }));
  subs.push(bus.subscribe(safety.state, mine, (msg) => {
    heard.safety = true;
    // The monitor repeats its state every few seconds; a clear state the
    // machine knows already would run it for nothing. A trip's repeats may
    // name new causes, so they go on.
    if (!msg.status.tripped && actor.getSnapshot().matches({ safety: "clear" })) return;
    send({
      type: "SAFETY",
      tripped: msg.status.tripped,
      causes: msg.status.causes,
      nowMs: now(),
    });
  }));
  subs.push(bus.subscribe(payment.readerChanged, mine, (msg) => {
    heard.reader = true;
    // The reader's state is repeated too; only a change moves the machine.
    if (actor.getSnapshot().matches({ reader: msg.cardReaderOnline ? "online" : "offline" })) {
      return;
    }
    send({ type: "READER", online: msg.cardReaderOnline, nowMs: now() });
  }));

  const status = () =>
    supervisorStatus(actor.getSnapshot(), {
      state: stateString(actor.getSnapshot().value),
      nowMs: now(),
      seen: routineBeats,
    });
  subs.push(bus.serve(supervisor.status, () => ok(status())));
  subs.push(bus.serve(supervisor.maintenance, (req) => {
    send({ type: "MAINTENANCE", enable: req.enable, reason: req.reason, nowMs: now() });
    return ok(status());
  }));
  subs.push(bus.serve(supervisor.resolveAlert, (req) => {
    if (!findAlert(actor.getSnapshot().context.alerts, req.alertId)) {
      return fail("NOT_FOUND", `No alert "${req.alertId}" is known to the supervisor`);
    }
    send({ type: "RESOLVE_ALERT", alertId: req.alertId, nowMs: now() });
    const resolved = findAlert(actor.getSnapshot().context.alerts, req.alertId);
    return resolved ? ok(resolved) : fail("NOT_FOUND", `Alert "${req.alertId}" was evicted`);
  }));

  actor.start();
  publishView(false);
  const stopRepublish = every(clock, machineRepublishMs, () => publishView(true));

  // A supervisor (re)started while safety is tripped or the reader is down
  // would otherwise wait for the next change to hear of it.
  bus.request(safety.status, {}, { timeoutMs: 2_000 }).then((r) => {
    if (!r.ok || heard.safety) return;
    send({ type: "SAFETY", tripped: r.value.tripped, causes: r.value.causes, nowMs: now() });
  }).catch((err: unknown) => log.log("warn", "safety probe failed", { err: String(err) }));
  bus.request(payment.reader, {}, { timeoutMs: 2_000 }).then((r) => {
    if (!r.ok || heard.reader) return;
    send({ type: "READER", online: r.value.cardReaderOnline, nowMs: now() });
  }).catch((err: unknown) => log.log("warn", "reader probe failed", { err: String(err) }));

  return {
    state: () => stateString(actor.getSnapshot().value),
    alive: () => running && actor.getSnapshot().status === "active",
    stop: () => {
      if (running) {
        running = false;
        stopRepublish();
        for (const unsubscribe of subs) unsubscribe();
        actor.stop();
      }
      return Promise.resolve();
    },
  };
}
