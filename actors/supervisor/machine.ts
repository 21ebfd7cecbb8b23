/**
 * The supervisor's XState machine. Four parallel regions hold the machine's
 * modes (safety, card reader, maintenance, equipment); `machineView` ranks them
 * into one status. Bookkeeping (health, restarts, alerts, aborted orders) is
 * planned by the pure functions of `plans.ts` and applied by `applyPlan`.
 * The bus work (cancel loops, order sweeps, restart requests, the watchdog
 * tick) is done by placeholder actors that the host provides.
 */
import { assign, enqueueActions, fromCallback, setup, type SnapshotFrom } from "xstate";
import { Component } from "../../protocol/define.ts";
import type { Alert, MachineStatus, OrderStatus } from "../../protocol/entities.ts";
import type { TripCause } from "../../protocol/safety.ts";
import type { SupervisorStatus } from "../../protocol/supervisor.ts";
import { emptyAlertBook, openAlerts } from "./alert_book.ts";
import {
  cancelChildId,
  type CancelOrderInput,
  type HeardBeats,
  type ListOrdersInput,
  type Notice,
  type Plan,
  planAlertIn,
  planCancelDone,
  planHeartbeat,
  planOrderFault,
  planOrdersListed,
  planReaderOffline,
  planResolveAlert,
  planRestartDone,
  planSafetyTrip,
  planTick,
  restartChildId,
  type RestartInput,
  safetyReason,
  type SupervisorContext,
  type Tick,
} from "./plans.ts";
import { defaultRestartIntensity, type RestartIntensity } from "./restart_intensity.ts";

/** What starts a supervisor machine. */
export interface SupervisorInput {
  machineId: string;
  /** Prefix of our own alert ids; unique per start so ids never repeat. */
  idPrefix: string;
  heartbeatTimeoutMs: number;
  intensity?: RestartIntensity;
  alertCapacity?: number;
}

/** Input of the watchdog ticker: send `TICK` every `periodMs` clock ms. */
export interface TickerInput {
  periodMs: number;
}

/** Events the supervisor machine takes; the host stamps each with the clock's `nowMs`. */
export type SupervisorEvent =
  | {
    type: "HEARTBEAT";
    component: Component;
    state: string;
    alive: boolean;
    restarts: number;
    nowMs: number;
  }
  | ({ type: "TICK" } & Tick)
  | {
    type: "ORDER_FAULT";
    component: Component;
    code: string;
    message: string;
    orderId: string;
    nowMs: number;
  }
  | { type: "SAFETY"; tripped: boolean; causes: TripCause[]; nowMs: number }
  | { type: "READER"; online: boolean; nowMs: number }
  | { type: "MAINTENANCE"; enable: boolean; reason: string; nowMs: number }
  | { type: "ALERT_IN"; component: Component; alert: Omit<Alert, "machineId"> }
  | { type: "RESOLVE_ALERT"; alertId: string; nowMs: number }
  | {
    type: "ORDERS_LISTED";
    sweepId: string;
    reason: string;
    orders: { orderId: string; status: OrderStatus }[];
    nowMs: number;
  }
  | { type: "CANCEL_DONE"; orderId: string; ok: boolean; detail: string }
  | {
    type: "RESTART_DONE";
    component: Component;
    ok: boolean;
    restarts: number | null;
    detail: string;
    nowMs: number;
  };

/** What the machine tells its host: our alerts to publish, lines to log. */
export type SupervisorEmitted =
  | { type: "alert"; alert: Alert }
  | ({ type: "notice" } & Notice);

const noop = () => {};

/** The supervisor machine; provide `ticker`, `cancelOrder`, `listOrders`, `restartComponent`. */
export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
    emitted: {} as SupervisorEmitted,
  },
  actors: {
    ticker: fromCallback<SupervisorEvent, TickerInput>(noop),
    cancelOrder: fromCallback<SupervisorEvent, CancelOrderInput>(noop),
    listOrders: fromCallback<SupervisorEvent, ListOrdersInput>(noop),
    restartComponent: fromCallback<SupervisorEvent, RestartInput>(noop),
  },
  guards: {
    reportsTripped: ({ event }) => event.type === "SAFETY" && event.tripped,
    reportsClear: ({ event }) => event.type === "SAFETY" && !event.tripped,
    readerWentOffline: ({ event }) => event.type === "READER" && !event.online,
    readerCameOnline: ({ event }) => event.type === "READER" && event.online,
    enablesMaintenance: ({ event }) => event.type === "MAINTENANCE" && event.enable,
    disablesMaintenance: ({ event }) => event.type === "MAINTENANCE" && !event.enable,
    anyGivenUp: ({ context }) => givenUp(context).length > 0,
    noneGivenUp: ({ context }) => givenUp(context).length === 0,
  },
  actions: {
    applyPlan: enqueueActions(({ enqueue }, plan: Plan) => {
      if (Object.keys(plan.context).length) enqueue.assign(plan.context);
      for (const id of plan.stops) enqueue.stopChild(id);
      for (const input of plan.cancels) {
        enqueue.spawnChild("cancelOrder", { id: cancelChildId(input.orderId), input });
      }
      for (const input of plan.sweeps) {
        enqueue.spawnChild("listOrders", { id: input.sweepId, input });
      }
      for (const component of plan.restarts) {
        enqueue.spawnChild("restartComponent", {
          id: restartChildId(component),
          input: { component },
        });
      }
      for (const alert of plan.alerts) enqueue.emit({ type: "alert", alert });
      for (const notice of plan.notices) enqueue.emit({ type: "notice", ...notice });
    }),
    noteSafetyCauses: assign({
      safetyCauses: ({ event, context }) =>
        event.type === "SAFETY" && event.causes.length ? event.causes : context.safetyCauses,
    }),
    clearSafetyCauses: assign({ safetyCauses: () => [] }),
    noteMaintenance: assign({
      maintenanceReason: ({ event, context }) =>
        event.type === "MAINTENANCE" ? event.reason : context.maintenanceReason,
    }),
    clearMaintenance: assign({ maintenanceReason: () => null }),
  },
}).createMachine({
  id: "supervisor",
  type: "parallel",
  context: ({ input }) => ({
    machineId: input.machineId,
    idPrefix: input.idPrefix,
    heartbeatTimeoutMs: input.heartbeatTimeoutMs,
    intensity: input.intensity ?? defaultRestartIntensity,
    components: {},
    alerts: emptyAlertBook(input.alertCapacity),
    alertSeq: 0,
    abortedOrderIds: [],
    safetyCauses: [],
    maintenanceReason: null,
    sweepSeq: 0,
  }),
  on: {
    HEARTBEAT: {
      actions: { type: "applyPlan", params: ({ context, event }) => planHeartbeat(context, event) },
    },
    TICK: {
      actions: { type: "applyPlan", params: ({ context, event }) => planTick(context, event) },
    },
    ORDER_FAULT: {
      actions: {
        type: "applyPlan",
        params: ({ context, event }) => planOrderFault(context, event),
      },
    },
    ORDERS_LISTED: {
      actions: {
        type: "applyPlan",
        params: ({ context, event }) => planOrdersListed(context, event),
      },
    },
    CANCEL_DONE: {
      actions: {
        type: "applyPlan",
        params: ({ context, event }) => planCancelDone(context, event),
      },
    },
    RESTART_DONE: {
      actions: {
        type: "applyPlan",
        params: ({ context, event }) => planRestartDone(context, event),
      },
    },
    ALERT_IN: {
      actions: { type: "applyPlan", params: ({ context, event }) => planAlertIn(context, event) },
    },
    RESOLVE_ALERT: {
      actions: {
        type: "applyPlan",
        params: ({ context, event }) => planResolveAlert(context, event),
      },
    },
  },
  states: {
    watchdog: {
      invoke: {
        src: "ticker",
        // Several checks per timeout, so a silent component is caught close to it.
        input: ({ context }) => ({
          periodMs: Math.max(10, Math.floor(context.heartbeatTimeoutMs / 4)),
        }),
      },
    },
    safety: {
      initial: "clear",
      states: {
        clear: {
          on: {
            SAFETY: { guard: "reportsTripped", target: "tripped", actions: "noteSafetyCauses" },
          },
        },
        tripped: {
          tags: ["error"],
          entry: {
            type: "applyPlan",
            params: ({ context, event }) =>
              planSafetyTrip(context, { nowMs: "nowMs" in event ? event.nowMs : 0 }),
          },
          on: {
            SAFETY: [
              { guard: "reportsClear", target: "clear", actions: "clearSafetyCauses" },
              { actions: "noteSafetyCauses" },
            ],
          },
        },
      },
    },
    reader: {
      initial: "online",
      states: {
        online: {
          on: { READER: { guard: "readerWentOffline", target: "offline" } },
        },
        offline: {
          tags: ["cashOnly"],
          entry: {
            type: "applyPlan",
            params: ({ context, event }) =>
              planReaderOffline(context, { nowMs: "nowMs" in event ? event.nowMs : 0 }),
          },
          on: { READER: { guard: "readerCameOnline", target: "online" } },
        },
      },
    },
    maintenance: {
      initial: "off",
      states: {
        off: {
          on: {
            MAINTENANCE: { guard: "enablesMaintenance", target: "on", actions: "noteMaintenance" },
          },
        },
        on: {
          on: {
            MAINTENANCE: [
              { guard: "disablesMaintenance", target: "off", actions: "clearMaintenance" },
              { actions: "noteMaintenance" },
            ],
          },
        },
      },
    },
    equipment: {
      initial: "ok",
      states: {
        ok: { always: { guard: "anyGivenUp", target: "failed" } },
        failed: { tags: ["error"], always: { guard: "noneGivenUp", target: "ok" } },
      },
    },
  },
});

/** A snapshot of the supervisor machine. */
export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;

/** Components the supervisor gave up restarting. */
export function givenUp(context: SupervisorContext): Component[] {
  return (Object.keys(context.components) as Component[]).filter((c) =>
    context.components[c]?.gaveUp
  );
}

/** What `machine` events carry. */
export interface MachineView {
  status: MachineStatus;
  reason: string | null;
  cashOnly: boolean;
  maintenance: boolean;
}

/** Ranks the modes: ERROR > MAINTENANCE > DEGRADED > OPERATIONAL. */
export function machineView(snapshot: SupervisorSnapshot): MachineView {
  const { context } = snapshot;
  const cashOnly = snapshot.matches({ reader: "offline" });
  const maintenance = snapshot.matches({ maintenance: "on" });
  const base = { cashOnly, maintenance };
  if (snapshot.matches({ safety: "tripped" })) {
    return { ...base, status: "ERROR", reason: safetyReason(context.safetyCauses) };
  }
  if (snapshot.matches({ equipment: "failed" })) {
    return {
      ...base,
      status: "ERROR",
      reason: `restart limit reached: ${givenUp(context).join(", ")}`,
    };
  }
  if (maintenance) {
    return { ...base, status: "MAINTENANCE", reason: `maintenance: ${context.maintenanceReason}` };
  }
  if (cashOnly) return { ...base, status: "DEGRADED", reason: "card reader offline: cash only" };
  return { ...base, status: "OPERATIONAL", reason: null };
}

/** The `status` reply: the view, every component's health and the open alerts. */
export function supervisorStatus(
  snapshot: SupervisorSnapshot,
  self: { state: string; nowMs: number; seen: HeardBeats },
): SupervisorStatus {
  const components = Object.fromEntries(Component.options.map((c) => {
    const watch = snapshot.context.components[c];
    if (c === "supervisor") {
      return [c, {
        state: self.state,
        alive: true,
        lastSeen: self.nowMs,
        restarts: watch?.restarts ?? 0,
      }];
    }
    return [
      c,
      watch
        ? {
          state: watch.state,
          alive: watch.alive,
          lastSeen: Math.max(watch.lastSeenMs, self.seen[c] ?? -Infinity),
          restarts: watch.restarts,
        }
        : { state: "unknown", alive: false, lastSeen: null, restarts: 0 },
    ];
  })) as SupervisorStatus["components"];
  return { ...machineView(snapshot), components, alerts: openAlerts(snapshot.context.alerts) };
}
