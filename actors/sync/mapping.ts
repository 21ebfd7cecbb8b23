/**
 * The machine's own bus events as fleet events. A fleet event keeps the id,
 * machine and time of the bus event it comes from, so mapping the same bus
 * event twice yields the same fleet event (and JetStream keeps one).
 */
import type { Envelope, EventMessage } from "../../protocol/define.ts";
import { type FleetEvent, type FleetPayload, fleetSchemas } from "../../protocol/fleet.ts";
import type * as order from "../../protocol/order.ts";
import type * as payment from "../../protocol/payment.ts";
import type * as carousel from "../../protocol/carousel.ts";
import type * as oven from "../../protocol/oven.ts";
import type * as arm from "../../protocol/arm.ts";
import type * as safety from "../../protocol/safety.ts";
import type * as supervisor from "../../protocol/supervisor.ts";
import type { alert } from "../../protocol/common.ts";

type K = FleetEvent["kind"];

function fleetEvent<T extends K>(from: Envelope, kind: T, payload: FleetPayload<T>): FleetEvent {
  return {
    id: from.id,
    machineId: from.machineId,
    ts: from.ts,
    ...(from.orderId ? { orderId: from.orderId } : {}),
    kind,
    ...payload,
  } as FleetEvent;
}

const clip = (s: string, max: number) => (s.length > max ? s.slice(0, max) : s);

/** `order.updated` → `order` (the pickup code and queue view stay on the machine). */
export function fromOrder(msg: EventMessage<typeof order.updated>): FleetEvent {
  return fleetEvent(msg, "order", {
    order: fleetSchemas.order.shape.order.parse(msg.order),
  });
}

/** `payment.changed` → `payment`. */
export function fromPayment(msg: EventMessage<typeof payment.changed>): FleetEvent {
  return fleetEvent(msg, "payment", { payment: msg.payment });
}

/** `carousel.changed` → `inventory` (levels and the slot-level snapshot). */
export function fromInventory(msg: EventMessage<typeof carousel.changed>): FleetEvent {
  const inv = msg.inventory;
  return fleetEvent(msg, "inventory", {
    levels: inv.available,
    items: inv.items,
    storageTempC: inv.storageTempC,
    salesStopped: inv.salesStopped,
    source: "nats",
  });
}

/** `carousel.discarded` → `discard` (the HACCP log). */
export function fromDiscard(msg: EventMessage<typeof carousel.discarded>): FleetEvent {
  return fleetEvent(msg, "discard", {
    itemId: msg.itemId,
    pizzaId: msg.pizzaId,
    storageSlot: msg.storageSlot,
    reason: msg.reason,
    aboveLimitMs: msg.aboveLimitMs,
    storageTempC: msg.storageTempC,
  });
}

/** `carousel.temperature` → `temperature` (storage). */
export function fromStorageTemp(msg: EventMessage<typeof carousel.temperature>): FleetEvent {
  return fleetEvent(msg, "temperature", {
    sensor: "storage",
    tempC: msg.storageTempC,
    targetC: null,
    heaterPct: null,
    state: msg.salesStopped ? "sales_stopped" : "ok",
  });
}

/** `oven.temperature` → `temperature` (oven). */
export function fromOvenTemp(msg: EventMessage<typeof oven.temperature>): FleetEvent {
  return fleetEvent(msg, "temperature", {
    sensor: "oven",
    tempC: msg.temperatureC,
    targetC: msg.targetC,
    heaterPct: Math.min(100, Math.max(0, msg.heaterPct)),
    state: msg.state,
  });
}

/** `oven.cooked` → `cooking`. */
export function fromCooked(msg: EventMessage<typeof oven.cooked>): FleetEvent {
  return fleetEvent(msg, "cooking", { session: msg.session });
}

/** `oven.fault` → `fault`. */
export function fromOvenFault(msg: EventMessage<typeof oven.fault>): FleetEvent {
  return fleetEvent(msg, "fault", {
    component: "oven",
    code: msg.code,
    message: clip(msg.message, 500),
    activeOrderId: msg.activeOrderId,
    temperatureC: msg.temperatureC,
  });
}

/** `arm.fault` → `fault`. */
export function fromArmFault(msg: EventMessage<typeof arm.fault>): FleetEvent {
  return fleetEvent(msg, "fault", {
    component: "arm",
    code: msg.code,
    message: clip(msg.message, 500),
    activeOrderId: msg.activeOrderId,
    temperatureC: null,
  });
}

/** `safety.tripped` → `fault`, its causes as the code. */
export function fromSafetyTrip(msg: EventMessage<typeof safety.tripped>): FleetEvent {
  return fleetEvent(msg, "fault", {
    component: "safety",
    code: clip(msg.causes.join(",") || "UNKNOWN", 64),
    message: `Safety tripped: ${msg.causes.join(", ")}`,
    activeOrderId: null,
    temperatureC: null,
  });
}

/** Any component's `alert` → `alert`. */
export function fromAlert(
  component: keyof typeof alert,
  msg: EventMessage<(typeof alert)[keyof typeof alert]>,
): FleetEvent {
  return fleetEvent(msg, "alert", {
    component,
    alert: {
      alertId: clip(msg.alertId, 64),
      type: msg.type,
      severity: msg.severity,
      message: clip(msg.message, 500),
      resolved: msg.resolved,
      createdAt: msg.createdAt,
      resolvedAt: msg.resolvedAt,
      ...(msg.orderId ? { orderId: msg.orderId } : {}),
    },
  });
}

/** `supervisor.machine` → `machine`. */
export function fromMachine(msg: EventMessage<typeof supervisor.machine>): FleetEvent {
  return fleetEvent(msg, "machine", {
    status: msg.status,
    reason: msg.reason === null ? null : clip(msg.reason, 200),
    cashOnly: msg.cashOnly,
    maintenance: msg.maintenance,
  });
}

/**
 * Lets a temperature sample through at most once per `periodMs` of clock time
 * per sensor, and always when the sensor's state changes (a fault, sales
 * stopping), so the fleet sees the shape without the whole stream.
 */
export class Downsampler {
  private readonly last = new Map<string, { ts: number; state: string | null }>();
  /** Creates a downsampler of `periodMs` clock ms. */
  constructor(private readonly periodMs: number) {}
  /** Whether the sample of `sensor` at `ts` in `state` goes out. */
  admit(sensor: string, ts: number, state: string | null): boolean {
    const prev = this.last.get(sensor);
    if (prev && ts - prev.ts < this.periodMs && prev.state === state && ts >= prev.ts) {
      return false;
    }
    this.last.set(sensor, { ts, state });
    return true;
  }
}
