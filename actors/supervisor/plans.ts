/**
 * What the supervisor does about each thing it hears, as pure functions: each
 * takes the context and an event and returns a `Plan` (the context patch, the
 * orders to cancel, the components to restart, the alerts to publish). The
 * machine applies plans; keeping them pure keeps the rules testable and the
 * machine short.
 */
import type { Alert, OrderStatus } from "../../protocol/entities.ts";
import type { Component } from "../../protocol/define.ts";
import type { TripCause } from "../../protocol/safety.ts";
import {
  type AlertBook,
  alertKey,
  openAlertOf,
  resolveAlertById,
  upsertAlert,
} from "./alert_book.ts";
import { decideRestart, type RestartIntensity } from "./restart_intensity.ts";

/** What the supervisor knows of one component that has sent a heartbeat. */
export interface ComponentWatch {
  state: string;
  alive: boolean;
  lastSeenMs: number;
  /** Restarts as the component's host counts them. */
  restarts: number;
  /** Instants of our restarts still inside the intensity window. */
  restartHistoryMs: number[];
  /** A restart request is in flight. */
  restarting: boolean;
  /** The restart limit was reached: no more restarts until it reports alive by itself. */
  gaveUp: boolean;
  /**
   * After a restart, heartbeats counting fewer restarts than this (until
   * `staleUntilMs`) were sent before it and must not count as a new crash.
   */
  restartsAfterRestart: number | null;
  staleUntilMs: number;
}

/** The supervisor machine's context. */
export interface SupervisorContext {
  machineId: string;
  /** Prefix of the ids of our own alerts, unique per supervisor start. */
  idPrefix: string;
  heartbeatTimeoutMs: number;
  intensity: RestartIntensity;
  components: Partial<Record<Component, ComponentWatch>>;
  alerts: AlertBook;
  alertSeq: number;
  /** Orders already aborted (bounded): each is cancelled once. */
  abortedOrderIds: string[];
  safetyCauses: TripCause[];
  maintenanceReason: string | null;
  sweepSeq: number;
}

/** How many aborted order ids are remembered for deduplication. */
export const abortedOrdersKept = 1000;

/** Input of a cancel loop: cancel `orderId` by SUPERVISOR until the order actor answers. */
export interface CancelOrderInput {
  orderId: string;
  reason: string;
}

/** Input of a sweep: list orders, then report them back tagged with `sweepId`. */
export interface ListOrdersInput {
  sweepId: string;
  reason: string;
}

/** Input of a restart request for one component. */
export interface RestartInput {
  component: Component;
}

/** A log line the host writes for the machine. */
export interface Notice {
  level: "info" | "warn" | "error";
  msg: string;
  fields: Record<string, unknown>;
}

/** What to do about one event. */
export interface Plan {
  context: Partial<SupervisorContext>;
  cancels: CancelOrderInput[];
  restarts: Component[];
  sweeps: ListOrdersInput[];
  /** Ids of finished child actors to stop. */
  stops: string[];
  /** Our own alerts (new or updated) to publish. */
  alerts: Alert[];
  notices: Notice[];
}

/** The child-actor id of the cancel loop of `orderId`. */
export function cancelChildId(orderId: string): string {
  return `cancel-${orderId}`;
}

/** The child-actor id of the restart request of `component`. */
export function restartChildId(component: Component): string {
  return `restart-${component}`;
}

/** The machine's reason while safety is tripped. */
export function safetyReason(causes: readonly TripCause[]): string {
  return causes.length ? `safety trip: ${causes.join(", ")}` : "safety trip";
}

/** Cancel reasons are at most 200 characters on the wire. */
function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

interface RaiseSpec {
  type: Alert["type"];
  severity: Alert["severity"];
  /** The component or order the alert is about. */
  subject: string;
  message: string;
  nowMs: number;
  orderId?: string;
}

/** Accumulates the changes of one plan over a copy of the context. */
class PlanBuilder {
  private components: Partial<Record<Component, ComponentWatch>>;
  private alerts: AlertBook;
  private alertSeq: number;
  private abortedOrderIds: string[];
  private sweepSeq: number;
  private readonly touched = new Set<keyof SupervisorContext>();
  private readonly plan: Omit<Plan, "context"> = {
    cancels: [],
    restarts: [],
    sweeps: [],
    stops: [],
    alerts: [],
    notices: [],
  };

  constructor(private readonly ctx: SupervisorContext) {
    this.components = ctx.components;
    this.alerts = ctx.alerts;
    this.alertSeq = ctx.alertSeq;
    this.abortedOrderIds = ctx.abortedOrderIds;
    this.sweepSeq = ctx.sweepSeq;
  }

  watch(component: Component): ComponentWatch | undefined {
    return this.components[component];
  }

  setWatch(component: Component, watch: ComponentWatch): void {
    this.components = { ...this.components, [component]: watch };
    this.touched.add("components");
  }

  notice(level: Notice["level"], msg: string, fields: Record<string, unknown>): void {
    this.plan.notices.push({ level, msg, fields });
  }

  stop(childId: string): void {
    this.plan.stops.push(childId);
  }

  /** Raises (or updates) one of our own alerts and queues it for publishing. */
  raise(spec: RaiseSpec): void {
    const key = alertKey(spec.type, spec.subject);
    const isNew = openAlertOf(this.alerts, key) === undefined;
    const alert: Alert = {
      alertId: `${this.ctx.idPrefix}-${this.alertSeq + 1}`,
      machineId: this.ctx.machineId,
      type: spec.type,
      severity: spec.severity,
      message: spec.message,
      resolved: false,
      createdAt: spec.nowMs,
      resolvedAt: null,
      ...(spec.orderId ? { orderId: spec.orderId } : {}),
    };
    const result = upsertAlert(this.alerts, key, alert);
    if (isNew) this.alertSeq++;
    this.alerts = result.book;
    this.touched.add("alerts").add("alertSeq");
    this.plan.alerts.push(result.alert);
  }

  /** Records an alert a component raised; never republished. */
  collect(component: Component, alert: Alert): void {
    const key = alertKey(alert.type, alert.orderId ?? component);
    if (alert.resolved) {
      const open = openAlertOf(this.alerts, key);
      if (!open) return;
      this.alerts = resolveAlertById(this.alerts, open.alertId, alert.resolvedAt ?? alert.createdAt)
        .book;
    } else {
      this.alerts = upsertAlert(this.alerts, key, alert).book;
    }
    this.touched.add("alerts");
  }

  resolve(alertId: string, nowMs: number): void {
    const result = resolveAlertById(this.alerts, alertId, nowMs);
    if (!result.alert) return;
    this.alerts = result.book;
    this.touched.add("alerts");
  }

  /** Aborts `orderId` once: cancel it by SUPERVISOR and raise ORDER_ABORTED. */
  abortOrder(orderId: string, reason: string, nowMs: number): void {
    if (this.abortedOrderIds.includes(orderId)) return;
    this.abortedOrderIds = [...this.abortedOrderIds, orderId].slice(-abortedOrdersKept);
    this.touched.add("abortedOrderIds");
    this.plan.cancels.push({ orderId, reason: clip(reason) });
    this.raise({
      type: "ORDER_ABORTED",
      severity: "CRITICAL",
      subject: orderId,
      orderId,
      message: clip(`Order ${orderId} aborted: ${reason}`, 500),
      nowMs,
    });
    this.notice("warn", "aborting order", { orderId, reason });
  }

  /** Lists orders to abort those a safety trip strands. */
  sweep(reason: string): void {
    this.sweepSeq++;
    this.touched.add("sweepSeq");
    this.plan.sweeps.push({ sweepId: `sweep-${this.sweepSeq}`, reason });
  }

  /**
   * A watched component crashed or went silent: restart it within the restart
   * intensity, or give up on it (the machine goes ERROR).
   */
  failure(component: Component, why: string, nowMs: number): void {
    const watch = this.watch(component);
    if (!watch || watch.gaveUp || watch.restarting || component === "supervisor") return;
    const { maxRestarts, periodMs } = this.ctx.intensity;
    const decision = decideRestart(watch.restartHistoryMs, nowMs, this.ctx.intensity);
    const periodS = Math.round(periodMs / 1000);
    if (decision.allowed) {
      this.setWatch(component, {
        ...watch,
        alive: false,
        restarting: true,
        restartHistoryMs: decision.historyMs,
      });
      this.plan.restarts.push(component);
      this.raise({
        type: "EQUIPMENT_FAILURE",
        severity: "WARNING",
        subject: component,
        message:
          `${why}; restarting ${component} (restart ${decision.historyMs.length} of ${maxRestarts} allowed within ${periodS} s)`,
        nowMs,
      });
      this.notice("warn", "restarting component", { watched: component, why });
      return;
    }
    this.setWatch(component, {
      ...watch,
      alive: false,
      gaveUp: true,
      restartHistoryMs: decision.historyMs,
    });
    this.raise({
      type: "EQUIPMENT_FAILURE",
      severity: "CRITICAL",
      subject: component,
      message:
        `${component} failed again after ${maxRestarts} restarts within ${periodS} s (${why});` +
        ` no more restarts, machine out of service`,
      nowMs,
    });
    this.notice("error", "restart limit reached", { watched: component, why });
  }

  build(): Plan {
    const context: Partial<SupervisorContext> = {};
    const now: Partial<SupervisorContext> = {
      components: this.components,
      alerts: this.alerts,
      alertSeq: this.alertSeq,
      abortedOrderIds: this.abortedOrderIds,
      sweepSeq: this.sweepSeq,
    };
    for (const key of this.touched) Object.assign(context, { [key]: now[key] });
    return { context, ...this.plan };
  }
}

/** A heartbeat of `component`: refresh its health; a crash report means a failure. */
export function planHeartbeat(
  ctx: SupervisorContext,
  ev: { component: Component; state: string; alive: boolean; restarts: number; nowMs: number },
): Plan {
  const b = new PlanBuilder(ctx);
  const prev = b.watch(ev.component);
  const seen = { state: ev.state, alive: ev.alive, lastSeenMs: ev.nowMs, restarts: ev.restarts };
  if (!prev) {
    b.setWatch(ev.component, {
      ...seen,
      restartHistoryMs: [],
      restarting: false,
      gaveUp: false,
      restartsAfterRestart: null,
      staleUntilMs: 0,
    });
    b.notice("info", "watching component", { watched: ev.component });
    if (!ev.alive) {
      b.failure(ev.component, `${ev.component} reported crashed in state "${ev.state}"`, ev.nowMs);
    }
    return b.build();
  }
  const stale = prev.restartsAfterRestart !== null && ev.restarts < prev.restartsAfterRestart &&
    ev.nowMs < prev.staleUntilMs;
  if (stale) {
    b.setWatch(ev.component, { ...prev, lastSeenMs: ev.nowMs });
    return b.build();
  }
  if (prev.gaveUp) {
    // Back alive by someone else's hand (a technician restarted its process):
    // watch it again with a fresh restart budget.
    const recovered = ev.alive;
    b.setWatch(ev.component, {
      ...prev,
      ...seen,
      restartsAfterRestart: null,
      ...(recovered ? { gaveUp: false, restartHistoryMs: [] } : {}),
    });
    if (recovered) b.notice("info", "component recovered", { watched: ev.component });
    return b.build();
  }
  b.setWatch(ev.component, { ...prev, ...seen, restartsAfterRestart: null });
  if (!ev.alive) {
    b.failure(ev.component, `${ev.component} reported crashed in state "${ev.state}"`, ev.nowMs);
  }
  return b.build();
}

/** When the host last heard each component's unremarkable beat (see `isRoutineBeat`). */
export type HeardBeats = Partial<Record<Component, number>>;

/**
 * Whether a beat would change nothing but the watch's last-seen time: the
 * host then notes the time and hands it over with the next tick instead of
 * running the machine for it.
 */
export function isRoutineBeat(
  watch: ComponentWatch | undefined,
  beat: { state: string; alive: boolean; restarts: number },
): boolean {
  return watch !== undefined && beat.alive && watch.alive && watch.state === beat.state &&
    watch.restarts === beat.restarts && !watch.gaveUp && !watch.restarting &&
    watch.restartsAfterRestart === null;
}

/** The watchdog's tick: the time, the tick's lateness and the routine beats heard. */
export interface Tick {
  nowMs: number;
  /** Clock ms since the ticker's previous tick; null for its first. */
  sinceLastTickMs: number | null;
  seen?: HeardBeats;
}

/**
 * The watchdog's tick: a component silent for longer than the timeout has
 * failed. When the tick itself comes later than the timeout, this process was
 * stalled (paused, overloaded) and the heartbeats it missed are no evidence
 * against anyone: every component gets a fresh timeout instead.
 */
export function planTick(ctx: SupervisorContext, ev: Tick): Plan {
  const b = new PlanBuilder(ctx);
  for (const [component, seenMs] of Object.entries(ev.seen ?? {}) as [Component, number][]) {
    const watch = b.watch(component);
    if (watch && seenMs > watch.lastSeenMs) b.setWatch(component, { ...watch, lastSeenMs: seenMs });
  }
  const stalledMs = ev.sinceLastTickMs ?? 0;
  const own = b.watch("supervisor");
  // Our own host's heartbeat travels the same bus: when it is silent too, the
  // bus is down, and silence from the others is no evidence of a crash.
  const cutOff = own !== undefined && ev.nowMs - own.lastSeenMs > ctx.heartbeatTimeoutMs;
  const stalled = stalledMs > ctx.heartbeatTimeoutMs || cutOff;
  if (stalled) {
    b.notice("warn", "supervisor was stalled or cut off; heartbeat checks restart", {
      stalledMs,
      cutOff,
    });
  }
  for (const component of Object.keys(ctx.components) as Component[]) {
    const watch = b.watch(component);
    if (!watch || watch.gaveUp || watch.restarting || component === "supervisor") continue;
    if (stalled) {
      b.setWatch(component, { ...watch, lastSeenMs: Math.max(watch.lastSeenMs, ev.nowMs) });
      continue;
    }
    const silentMs = ev.nowMs - watch.lastSeenMs;
    if (silentMs <= ctx.heartbeatTimeoutMs) continue;
    b.failure(component, `${component} sent no heartbeat for ${silentMs} ms`, ev.nowMs);
  }
  return b.build();
}

/**
 * Whether a tick would only move last-seen times forward: the ticker then
 * keeps it from the machine. A later tick hands over the same routine beats,
 * since `seen` holds the latest of each, and lateness is measured by the
 * ticker itself, so nothing is lost by skipping it.
 */
export function tickIsRoutine(ctx: SupervisorContext, ev: Tick): boolean {
  const p = planTick(ctx, ev);
  return p.cancels.length + p.restarts.length + p.sweeps.length + p.stops.length +
      p.alerts.length + p.notices.length === 0;
}

/** The reply to a restart request. */
export function planRestartDone(
  ctx: SupervisorContext,
  ev: { component: Component; ok: boolean; restarts: number | null; detail: string; nowMs: number },
): Plan {
  const b = new PlanBuilder(ctx);
  b.stop(restartChildId(ev.component));
  const watch = b.watch(ev.component);
  if (!watch) return b.build();
  if (ev.ok) {
    b.setWatch(ev.component, {
      ...watch,
      restarting: false,
      alive: true,
      state: "restarted",
      // A fresh start gets a full timeout before its first heartbeat is due.
      lastSeenMs: ev.nowMs,
      restarts: ev.restarts ?? watch.restarts,
      restartsAfterRestart: ev.restarts,
      staleUntilMs: ev.nowMs + ctx.heartbeatTimeoutMs,
    });
    b.notice("info", "component restarted", { watched: ev.component, restarts: ev.restarts });
  } else {
    b.setWatch(ev.component, { ...watch, restarting: false });
    b.notice("warn", "restart request failed", { watched: ev.component, detail: ev.detail });
  }
  return b.build();
}

/** An oven or arm fault that ended an order's preparation: abort that order. */
export function planOrderFault(
  ctx: SupervisorContext,
  ev: { component: Component; code: string; message: string; orderId: string; nowMs: number },
): Plan {
  const b = new PlanBuilder(ctx);
  b.abortOrder(ev.orderId, `${ev.component} fault ${ev.code}: ${ev.message}`, ev.nowMs);
  return b.build();
}

/** Statuses a safety trip strands: paid but not yet baked. */
const strandedByTrip: ReadonlySet<OrderStatus> = new Set(["PAID", "PREPARING"]);

/** A sweep's order list: abort the paid orders a safety trip strands. */
export function planOrdersListed(
  ctx: SupervisorContext,
  ev: {
    sweepId: string;
    reason: string;
    orders: { orderId: string; status: OrderStatus }[];
    nowMs: number;
  },
): Plan {
  const b = new PlanBuilder(ctx);
  b.stop(ev.sweepId);
  for (const order of ev.orders) {
    if (strandedByTrip.has(order.status)) b.abortOrder(order.orderId, ev.reason, ev.nowMs);
  }
  return b.build();
}

/** The order actor answered a cancel. */
export function planCancelDone(
  ctx: SupervisorContext,
  ev: { orderId: string; ok: boolean; detail: string },
): Plan {
  const b = new PlanBuilder(ctx);
  b.stop(cancelChildId(ev.orderId));
  b.notice(ev.ok ? "info" : "warn", ev.ok ? "order cancelled" : "order cancel refused", {
    orderId: ev.orderId,
    detail: ev.detail,
  });
  return b.build();
}

/** Safety tripped: raise the alert and sweep the orders it strands. */
export function planSafetyTrip(ctx: SupervisorContext, ev: { nowMs: number }): Plan {
  const b = new PlanBuilder(ctx);
  const reason = safetyReason(ctx.safetyCauses);
  b.raise({
    type: "SAFETY_TRIP",
    severity: "CRITICAL",
    subject: "safety",
    message: `Machine stopped: ${reason}`,
    nowMs: ev.nowMs,
  });
  b.sweep(reason);
  b.notice("error", "safety tripped", { causes: ctx.safetyCauses });
  return b.build();
}

/** The card reader went offline: cash only. */
export function planReaderOffline(ctx: SupervisorContext, ev: { nowMs: number }): Plan {
  const b = new PlanBuilder(ctx);
  b.raise({
    type: "PAYMENT_ISSUE",
    severity: "WARNING",
    subject: "payment",
    message: "Card reader offline: taking cash only",
    nowMs: ev.nowMs,
  });
  return b.build();
}

/** An alert a component raised (or resolved). */
export function planAlertIn(
  ctx: SupervisorContext,
  ev: { component: Component; alert: Omit<Alert, "machineId"> },
): Plan {
  const b = new PlanBuilder(ctx);
  b.collect(ev.component, { ...ev.alert, machineId: ctx.machineId });
  return b.build();
}

/** An operator resolved an alert. */
export function planResolveAlert(
  ctx: SupervisorContext,
  ev: { alertId: string; nowMs: number },
): Plan {
  const b = new PlanBuilder(ctx);
  b.resolve(ev.alertId, ev.nowMs);
  return b.build();
}
