/**
 * Simulated machines that produce a realistic mix of fleet events: mostly
 * temperature samples, orders that run their lifecycle with their payments,
 * cooking sessions and stock, heartbeats, a few alerts and faults. For the
 * ingestion tests and the fleet bench; seeded, so a seed gives the same events.
 */
import type { Random } from "../../random/random.ts";
import { type FleetEvent, type FleetEventOf, FleetKind } from "../../protocol/fleet.ts";

const pizzas = ["margherita", "pepperoni", "veggie", "hawaiian", "bbq"];
const alertTypes = ["LOW_INVENTORY", "TEMPERATURE_ISSUE", "PAYMENT_ISSUE"] as const;

interface MachineState {
  id: string;
  order: FleetEventOf<"order">["order"] | null;
  paymentId: string | null;
  stock: Record<string, number>;
  queue: FleetEvent[];
  ovenC: number;
}

/** A generator of fleet events for `machineIds`. */
export interface SimulatedFleet {
  /** The next event (of a random machine), stamped `now()`. */
  next(): FleetEvent;
  /** Events produced so far, per kind. */
  counts(): Record<FleetKind, number>;
}

/** Creates simulated machines `machineIds`, drawing from `random`, stamping with `now`. */
export function createSimulatedFleet(
  machineIds: readonly string[],
  random: Random,
  now: () => number,
): SimulatedFleet {
  if (!machineIds.length) throw new RangeError("A simulated fleet needs at least one machine");
  const machines: MachineState[] = machineIds.map((id) => ({
    id,
    order: null,
    paymentId: null,
    stock: Object.fromEntries(pizzas.map((p) => [p, 8])),
    queue: [],
    ovenC: 220,
  }));
  const counts = Object.fromEntries(
    FleetKind.options.map((k) => [k, 0]),
  ) as Record<FleetKind, number>;
  const pick = <T>(xs: readonly T[]): T => xs[random.int(0, xs.length - 1)]!;
  const env = (m: MachineState, orderId?: string) => ({
    id: random.uuid(),
    machineId: m.id,
    ts: now(),
    ...(orderId ? { orderId } : {}),
  });

  const payment = (m: MachineState, status: "AUTHORIZED" | "COMPLETED"): FleetEvent => {
    const order = m.order!;
    return {
      ...env(m, order.orderId),
      kind: "payment",
      payment: {
        paymentId: m.paymentId!,
        orderId: order.orderId,
        amountCents: order.totalAmountCents,
        method: "CARD",
        status,
        transactionId: `tx_${m.paymentId!.slice(0, 8)}`,
        last4: "4242",
        insertedCents: 0,
        changeCents: 0,
        gatewayResponse: null,
        processedAt: now(),
      },
    };
  };

  const stepOrder = (m: MachineState): void => {
    const t = now();
    if (!m.order) {
      m.order = {
        orderId: random.uuid(),
        machineId: m.id,
        pizzaId: pick(pizzas),
        status: "PENDING",
        totalAmountCents: 899 + 100 * random.int(0, 6),
        placedAt: t,
        readyAt: null,
        dispensedAt: null,
      };
      m.paymentId = random.uuid();
    } else {
      const next: Record<string, FleetEventOf<"order">["order"]["status"]> = {
        PENDING: "PAID",
        PAID: "PREPARING",
        PREPARING: "READY",
        READY: "DISPENSED",
      };
      const status = next[m.order.status]!;
      m.order = {
        ...m.order,
        status,
        paymentMethod: "CARD",
        ...(status === "READY" ? { readyAt: t } : {}),
        ...(status === "DISPENSED" ? { dispensedAt: t } : {}),
      };
      if (status === "PAID") m.queue.push(payment(m, "AUTHORIZED"));
      if (status === "READY") {
        m.queue.push({
          ...env(m, m.order.orderId),
          kind: "cooking",
          session: {
            sessionId: random.uuid(),
            orderId: m.order.orderId,
            machineId: m.id,
            startTemperatureC: 215,
            targetTemperatureC: 220,
            currentTemperatureC: 219.5,
            estimatedCompletion: t,
            timeRemainingMs: 0,
            status: "COMPLETE",
            startedAt: t - 240_000,
            completedAt: t,
          },
        });
      }
      if (status === "DISPENSED") {
        m.queue.push(payment(m, "COMPLETED"));
        m.stock[m.order.pizzaId] = Math.max(0, (m.stock[m.order.pizzaId] ?? 1) - 1);
        m.queue.push(inventory(m));
      }
    }
    const order = m.order;
    m.queue.unshift({ ...env(m, order.orderId), kind: "order", order });
    if (order.status === "DISPENSED") m.order = null;
  };

  const inventory = (m: MachineState): FleetEvent => ({
    ...env(m),
    kind: "inventory",
    levels: { ...m.stock },
    items: null,
    storageTempC: 3.5,
    salesStopped: false,
    source: "nats",
  });

  const produce = (m: MachineState): FleetEvent => {
    const roll = random.float();
    if (roll < 0.55) {
      const oven = random.int(0, 1) === 0;
      m.ovenC += (random.float() - 0.5) * 4;
      return {
        ...env(m),
        kind: "temperature",
        sensor: oven ? "oven" : "storage",
        tempC: oven ? Math.round(m.ovenC * 10) / 10 : 3 + Math.round(random.float() * 10) / 10,
        targetC: oven ? 220 : null,
        heaterPct: oven ? random.int(0, 100) : null,
        state: oven ? "holding" : null,
      };
    }
    if (roll < 0.8) {
      stepOrder(m);
      return m.queue.shift()!;
    }
    if (roll < 0.86) return inventory(m);
    if (roll < 0.91) {
      return {
        ...env(m),
        kind: "heartbeat",
        configVersion: "v1",
        softwareVersion: "1.0.0",
        outboxDepth: 0,
        via: "nats",
      };
    }
    if (roll < 0.94) {
      return {
        ...env(m),
        kind: "sale",
        itemId: pick(pizzas),
        priceCents: 999,
        soldAt: now(),
        source: "nats",
      };
    }
    if (roll < 0.97) {
      return {
        ...env(m),
        kind: "metric",
        name: "queue_length",
        value: random.int(0, 3),
        labels: null,
      };
    }
    if (roll < 0.972) {
      const resolved = random.int(0, 2) === 0;
      const t = now();
      return {
        ...env(m),
        kind: "alert",
        component: "carousel",
        alert: {
          alertId: random.uuid(),
          type: pick(alertTypes),
          severity: "WARNING",
          message: "Simulated alert",
          resolved,
          createdAt: t,
          resolvedAt: resolved ? t : null,
        },
      };
    }
    if (roll < 0.99) {
      return {
        ...env(m),
        kind: "fault",
        component: "arm",
        code: "JAM",
        message: "Simulated jam",
        activeOrderId: null,
        temperatureC: null,
      };
    }
    if (roll < 0.995) {
      return {
        ...env(m),
        kind: "machine",
        status: "OPERATIONAL",
        reason: null,
        cashOnly: false,
        maintenance: false,
      };
    }
    return {
      ...env(m),
      kind: "discard",
      itemId: random.uuid(),
      pizzaId: pick(pizzas),
      storageSlot: random.int(0, 39),
      reason: "EXPIRED",
      aboveLimitMs: 0,
      storageTempC: 3.8,
    };
  };

  return {
    next() {
      const m = pick(machines);
      const queued = m.queue.shift();
      // A machine sends what it queued the next time it speaks: stamped then.
      const e = queued ? { ...queued, ts: now() } : produce(m);
      counts[e.kind]++;
      return e;
    },
    counts: () => ({ ...counts }),
  };
}
