/**
 * The order component: one XState actor per order under a FIFO queue (seed 003
 * §6.5), serving the kiosk's commands of protocol/order.ts, journaling every
 * order, and recovering unfinished orders on start.
 */
import { type Actor, createActor, fromPromise, type SnapshotFrom } from "xstate";
import type { ActorContext, RunningActor } from "../actor.ts";
import type { Journal } from "../../journal/journal.ts";
import { type Envelope, fail, ok, type Result } from "../../protocol/define.ts";
import type { CookingSession, Order, Payment, Pizza } from "../../protocol/entities.ts";
import * as arm from "../../protocol/arm.ts";
import * as carousel from "../../protocol/carousel.ts";
import * as oven from "../../protocol/oven.ts";
import * as payment from "../../protocol/payment.ts";
import * as orders from "../../protocol/order.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import { alert } from "../../protocol/common.ts";
import { type CancelBy, type OrderEvent, orderMachine, StepError } from "./order_machine.ts";
import { type OrderRecord, OrderStore } from "./order_store.ts";
import { KeyedRequests } from "./keyed_requests.ts";
import { onEvent, untilDone } from "./steps.ts";
import { every } from "../../clock/clock.ts";

type OrderActor = Actor<typeof orderMachine>;
type OrderSnapshot = SnapshotFrom<typeof orderMachine>;

/** Handling time around the bake: retrieval, arm moves, door. */
const handlingMs = 45_000;
/** From the end of the bake to the pizza in the pickup area. */
const unloadMs = 10_000;
/**
 * How long an order keeps asking a component that does not answer. Components
 * fault on their own deadlines (a jam, a stuck door) and say so at once; this
 * only bounds waiting out a bus outage or a component restart.
 */
const busOutageMs = 10 * 60_000;
/** How often the menu's copy of the stock is asked for anew, in case an event was lost. */
const stockRefreshMs = 5 * 60_000;
/** How long a baked pizza waits for the arm to accept it into the pickup area. */
const pickupFullWaitMs = 10 * 60_000;
/** How long loading the oven waits for an arm busy at the pickup door (its timeout is 60 s). */
const armBusyWaitMs = 2 * 60_000;
/** At most this many orders in preparation: one at the oven, one being fetched. */
const maxPreparing = 2;
/**
 * How often a wait for a component asks again when no event of its end came:
 * the fallback for a lost event or a restarted component.
 */
const eventFallbackMs = 10_000;
/** The longest a bake goes without its order asking the oven how it stands. */
const cookPollMaxMs = 60_000;
/** How often READY orders ask the arm whether their pizza was taken, in case `taken` was lost. */
const takenCheckMs = 30_000;

/** Options of {@linkcode startOrders}. */
export interface OrdersOptions {
  journal: Journal;
}

/** What the supervisor last said about the machine. */
interface MachineState {
  status: string;
  reason: string | null;
  cashOnly: boolean;
  maintenance: boolean;
}

/** Starts the order component; recovers the journal's unfinished orders first. */
export function startOrders(ctx: ActorContext, options: OrdersOptions): RunningActor {
  const { bus, clock, random } = ctx;
  const log = ctx.log.child("order");
  const store = new OrderStore(options.journal);
  const keyed = new KeyedRequests(store, () => clock.now());
  /**
   * The kiosk's key of the bill being inserted, per order: it rides beside the
   * INSERT_CASH event to the payment, which counts a bill once per key.
   */
  const cashKeys = new Map<string, string>();
  const live = new Map<string, OrderActor>();
  const lastStatus = new Map<string, string>();
  const unsubscribes: Array<() => void> = [];
  let machine: MachineState = {
    status: "OPERATIONAL",
    reason: null,
    cashOnly: false,
    maintenance: false,
  };
  let stopped = false;
  let lastQueue = "";

  const call = async <Q, R>(
    def: Parameters<typeof bus.request<Q, R>>[0],
    payload: Q,
    timeoutMs = 5000,
  ): Promise<R> => {
    const r = await bus.request(def, payload, { timeoutMs });
    if (!r.ok) throw new StepError(r.error);
    return r.value;
  };
  /** Retries of a call that failed in transit. */
  const poll = { clock, pollMs: 1000 };
  /** Waits for a component to finish, woken by its events. */
  const wait = { clock, pollMs: eventFallbackMs };
  /**
   * Carries the pizza of `move.orderId` to `move.to` and waits until it is
   * there. The arm refuses while its door is in use, the pickup area is full or
   * it is busy: that clears by itself or by staff, so such refusals are waited
   * out for `refusalsForMs`. Faults and trips fail at once and end the order
   * via the supervisor.
   */
  const moveArm = (
    move: { orderId: string; from: arm.ArmPosition; to: arm.ArmPosition },
    refusalsForMs: number,
    signal: AbortSignal,
  ) => {
    const refusalsUntil = clock.now() + refusalsForMs;
    return untilDone(
      async () => {
        const r = await bus.request(arm.move, move);
        const passing = !r.ok && r.error.code === "CONFLICT" &&
          !/fault|safety is tripped|position is unknown/i.test(r.error.message);
        return passing && clock.now() < refusalsUntil ? fail("UNAVAILABLE", r.error.message) : r;
      },
      (r) => r.status === "DONE",
      {
        ...wait,
        what: `arm move to ${move.to}`,
        deadlineMs: busOutageMs,
        signal,
        wakeOn: [
          onEvent(bus, arm.moved, (m) => m.orderId === move.orderId && m.position === move.to),
          onEvent(bus, arm.fault, (f) => f.activeOrderId === move.orderId),
          // A closing door may have freed the arm, a bay or the door itself.
          onEvent(bus, arm.door, (m) => !m.open),
        ],
      },
    );
  };

  const provided = orderMachine.provide({
    actors: {
      authorize: fromPromise(({ input }) =>
        call(payment.authorize, {
          orderId: input.orderId,
          amountCents: input.amountCents,
          method: input.method as "CARD" | "MOBILE_PAY",
          token: input.token,
        }, 90_000)
      ),
      insertCash: fromPromise(({ input }) => {
        const requestKey = cashKeys.get(input.orderId);
        return call(payment.insertCash, requestKey ? { ...input, requestKey } : input);
      }),
      paymentStatus: fromPromise(async ({ input }) => {
        const r = await bus.request(payment.status, input, { timeoutMs: 5000 });
        if (!r.ok && r.error.code === "NOT_FOUND") return null;
        if (!r.ok) throw new StepError(r.error);
        return r.value;
      }),
      retrieve: fromPromise(async ({ input, signal }) => {
        const mine = (m: Envelope) => m.orderId === input.orderId;
        await untilDone(() => bus.request(carousel.retrieve, input), (r) => r.status === "DONE", {
          ...wait,
          what: "retrieval from storage",
          deadlineMs: busOutageMs,
          signal,
          wakeOn: [onEvent(bus, carousel.retrieved, mine), onEvent(bus, carousel.discarded, mine)],
        });
      }),
      loadOven: fromPromise(async ({ input, signal }) => {
        const where = await untilDone(() => bus.request(arm.status, {}), () => true, {
          ...poll,
          what: "arm status",
          deadlineMs: busOutageMs,
          signal,
        });
        const moveTo = (from: arm.ArmPosition, to: arm.ArmPosition) =>
          moveArm({ orderId: input.orderId, from, to }, armBusyWaitMs, signal);
        if (where.position !== "STORAGE") await moveTo(where.position, "STORAGE");
        await moveTo("STORAGE", "OVEN");
      }),
      cook: fromPromise(({ input, signal }) =>
        untilDone(
          async () => {
            const r = await bus.request(oven.cook, input);
            if (r.ok) sessions.set(input.orderId, r.value);
            if (r.ok && r.value.status === "ERROR") {
              return fail("FAULT", "the oven ended the cooking session with an error");
            }
            return r;
          },
          (s) => s.status === "COMPLETE",
          {
            ...wait,
            what: "cooking",
            // A bake announces its end; without that word, ask when the oven
            // expects it (at least every minute), then every `pollMs`.
            nextPollMs: (s) =>
              Math.max(wait.pollMs, Math.min(s.estimatedCompletion - clock.now(), cookPollMaxMs)),
            deadlineMs: input.cookTimeMs + 20 * 60_000,
            signal,
            wakeOn: [
              onEvent(bus, oven.cooked, (m) => m.orderId === input.orderId),
              onEvent(
                bus,
                oven.progress,
                (m) => m.orderId === input.orderId && ["COMPLETE", "ERROR"].includes(m.status),
              ),
              onEvent(bus, oven.fault, (f) => f.activeOrderId === input.orderId),
              // An oven that is not cooking lost the session (a restart keeps
              // none): ask again at once, which starts it anew.
              onEvent(bus, oven.temperature, (t) => t.state !== "cooking"),
            ],
          },
        )
      ),
      unload: fromPromise(async ({ input, signal }) => {
        // A pickup area full of a pizza nobody collected waits for staff as
        // long as for a bay, instead of throwing the baked pizza away.
        await moveArm(
          { orderId: input.orderId, from: "OVEN", to: "PICKUP" },
          pickupFullWaitMs,
          signal,
        );
      }),
      openDoor: fromPromise(async ({ input }) => {
        await call(arm.openDoor, input);
      }),
      confirmTaken: fromPromise(async ({ input, signal }) => {
        // While the door is open for this order the customer may still take it.
        const s = await untilDone(
          () => bus.request(arm.status, {}),
          (st) => st.doorOrderId !== input.orderId,
          {
            ...wait,
            what: "the arm's answer whether the pizza was taken",
            deadlineMs: busOutageMs,
            signal,
            wakeOn: [onEvent(bus, arm.door, (m) => !m.open && m.orderId === input.orderId)],
          },
        );
        return s.taken.includes(input.orderId);
      }),
      settle: fromPromise(({ input, signal }) =>
        untilDone(() => bus.request(payment.settle, input), () => true, {
          ...poll,
          what: "payment capture",
          deadlineMs: 60_000,
          signal,
        })
      ),
      refund: fromPromise(async ({ input, signal }) => {
        const retrying = <R>(what: string, attempt: () => Promise<Result<R>>) =>
          untilDone(attempt, () => true, { ...poll, what, deadlineMs: 60_000, signal });
        // Stop the oven for this order whatever stage it reached: the oven ends
        // only that order's session, and NOT_FOUND means it never had one.
        await retrying("oven abort", async () => {
          const r = await bus.request(oven.abort, { orderId: input.orderId });
          return !r.ok && r.error.code === "NOT_FOUND" ? ok(null) : r;
        });
        await retrying(
          "release of the reservation",
          () => bus.request(carousel.release, { orderId: input.orderId }),
        );
        const current = await retrying("payment status", async () => {
          const r = await bus.request(payment.status, { orderId: input.orderId });
          return !r.ok && r.error.code === "NOT_FOUND" ? ok(null) : r;
        });
        if (current === null || current.status === "FAILED") return null;
        return retrying(
          "refund",
          () => bus.request(payment.refund, { orderId: input.orderId, reason: input.reason }),
        );
      }),
    },
    actions: {
      persist: ({ context }) => store.save(context.record, clock.now()),
      alert: ({ context }, params) => {
        bus.publish(alert.order, {
          alertId: random.uuid(),
          type: params.type,
          severity: "WARNING",
          message: params.message,
          resolved: false,
          createdAt: clock.now(),
          resolvedAt: null,
          orderId: context.record.order.orderId,
        }, context.record.order.orderId);
      },
    },
  });

  // -- views ---------------------------------------------------------------

  const queueOrder = () =>
    [...live.values()]
      .map((a) => a.getSnapshot())
      .filter((s) => s.matches("paid") || s.matches("preparing"))
      .sort((a, b) =>
        (a.context.record.paidAt ?? 0) - (b.context.record.paidAt ?? 0) ||
        a.context.record.order.placedAt - b.context.record.order.placedAt
      );

  const cycleMs = (pizza: Pizza) => pizza.cookingTimeMs + handlingMs;

  /** Latest cooking session per order, as the oven last reported it. */
  const sessions = new Map<string, CookingSession>();

  /**
   * When the pizza of `s` will be ready (§6.5): the queue ahead of it bakes in
   * turn; an order already in the oven finishes when its session says.
   */
  const estimateReadyAt = (s: OrderSnapshot): number | null => {
    const { order } = s.context.record;
    if (order.status === "READY") return order.readyAt;
    if (
      !["PENDING", "PAYMENT_PROCESSING", "PAYMENT_PENDING", "PAID", "PREPARING"].includes(
        order.status,
      )
    ) {
      return null;
    }
    let t = clock.now();
    for (const q of queueOrder()) {
      const id = q.context.record.order.orderId;
      const session = sessions.get(id);
      t = session
        ? Math.max(t, session.estimatedCompletion + unloadMs)
        : t + cycleMs(q.context.record.pizza);
      if (id === order.orderId) return t;
    }
    return t + cycleMs(s.context.record.pizza);
  };

  const view = (s: OrderSnapshot): orders.OrderView => {
    const index = queueOrder().findIndex((q) =>
      q.context.record.order.orderId === s.context.record.order.orderId
    );
    return {
      ...s.context.record.order,
      queuePosition: index === -1 ? null : index + 1,
      estimatedReadyAt: estimateReadyAt(s),
      pickupLocked: s.context.record.locked,
      payment: s.context.record.payment,
    };
  };

  const recordView = (record: OrderRecord): orders.OrderView => ({
    ...record.order,
    queuePosition: null,
    estimatedReadyAt: null,
    pickupLocked: record.locked,
    payment: record.payment,
  });

  // -- scheduling ----------------------------------------------------------

  let rescheduleQueued = false;
  const reschedule = () => {
    if (rescheduleQueued || stopped) return;
    rescheduleQueued = true;
    queueMicrotask(() => {
      rescheduleQueued = false;
      if (stopped) return;
      const snaps = queueOrder();
      const readyCount = [...live.values()].filter((a) => a.getSnapshot().matches("ready")).length;
      const atOven = snaps.some((s) =>
        ["loading", "cooking", "awaitingBay", "unloading"].some((st) =>
          s.matches({ preparing: st as "loading" })
        )
      );
      const bays = ctx.config.pickupBays;
      const send = (s: OrderSnapshot, event: OrderEvent) =>
        live.get(s.context.record.order.orderId)?.send(event);
      const waitingBay = snaps.find((s) => s.matches({ preparing: "awaitingBay" }));
      if (waitingBay && readyCount < bays) send(waitingBay, { type: "BAY_GRANTED" });
      const waitingOven = snaps.find((s) => s.matches({ preparing: "awaitingOven" }));
      if (waitingOven && !atOven && readyCount < bays) send(waitingOven, { type: "OVEN_GRANTED" });
      let preparing = snaps.filter((s) => s.matches("preparing")).length;
      for (const s of snaps) {
        if (preparing >= maxPreparing) break;
        if (s.matches("paid")) {
          send(s, { type: "START" });
          preparing++;
        }
      }
      const queueIds = queueOrder().map((s) => s.context.record.order.orderId);
      const key = queueIds.join(",");
      if (key !== lastQueue) {
        lastQueue = key;
        bus.publish(orders.queue, { length: queueIds.length, orderIds: queueIds });
      }
    });
  };

  const spawn = (record: OrderRecord, readyTimeoutMs?: number): OrderActor => {
    const orderId = record.order.orderId;
    const actor = createActor(provided, {
      clock,
      input: {
        record,
        now: () => clock.now(),
        ...(readyTimeoutMs !== undefined ? { readyTimeoutMs } : {}),
      },
    });
    live.set(orderId, actor);
    actor.subscribe({
      next: (s) => {
        const status = s.context.record.order.status;
        if (lastStatus.get(orderId) !== status) {
          lastStatus.set(orderId, status);
          bus.publish(orders.updated, { order: view(s) }, orderId);
          log.log("info", "order status", {
            orderId,
            status,
            reason: s.context.record.order.reason,
          });
        }
        if (!s.matches("preparing")) sessions.delete(orderId);
        if (s.status === "done") {
          live.delete(orderId);
          lastStatus.delete(orderId);
        }
        reschedule();
      },
      error: (err) => log.log("error", "order actor failed", { orderId, err: String(err) }),
    });
    actor.start();
    return actor;
  };

  /** Resolves once `actor` leaves every state in `busy`. */
  const settled = (actor: OrderActor, busy: string[]): Promise<OrderSnapshot> =>
    new Promise((resolve) => {
      const check = (s: OrderSnapshot) => !busy.some((b) => s.matches(b as "paying"));
      const now = actor.getSnapshot();
      if (check(now)) return resolve(now);
      const sub = actor.subscribe((s) => {
        if (check(s) || s.status !== "active") {
          sub.unsubscribe();
          resolve(s);
        }
      });
    });

  const settledIn = (actor: OrderActor, path: { ready: "opening" }) =>
    new Promise<OrderSnapshot>((resolve) => {
      const now = actor.getSnapshot();
      if (!now.matches(path)) return resolve(now);
      const sub = actor.subscribe((s) => {
        if (!s.matches(path)) {
          sub.unsubscribe();
          resolve(s);
        }
      });
    });

  const notFound = (orderId: string) => fail<never>("NOT_FOUND", `Order "${orderId}" not found`);

  const ended = (orderId: string): Result<never> | null => {
    const record = store.get(orderId);
    if (!record) return notFound(orderId);
    return fail("CONFLICT", `Order "${orderId}" is already ${record.order.status}`);
  };

  const refusal = (): string | null => {
    if (machine.maintenance) {
      return `Machine is in maintenance mode${
        machine.reason ? ` (${machine.reason})` : ""
      }: not taking orders`;
    }
    if (machine.status === "ERROR") {
      return `Machine is out of service${
        machine.reason ? ` (${machine.reason})` : ""
      }: not taking orders`;
    }
    return null;
  };

  const activeCodes = () =>
    new Set([...live.values()].map((a) => a.getSnapshot().context.record.order.pickupCode));

  // -- commands ------------------------------------------------------------

  // The menu answers from the carousel's last word on stock (its `changed` and
  // `sales` events), asking it only when that word is missing: one bus hop
  // instead of two on the kiosk's most frequent request. `create` still
  // reserves at the carousel, which has the final say. The carousel announces
  // every change of what it sells, so the periodic ask only mends an event
  // the bus lost.
  let stock: { available: Record<string, number>; salesStopped: boolean } | null = null;
  const refreshStock = async () => {
    const inv = await bus.request(carousel.inventory, {}, { timeoutMs: 1500 });
    if (inv.ok) stock = { available: inv.value.available, salesStopped: inv.value.salesStopped };
  };
  unsubscribes.push(bus.subscribe(carousel.changed, bus.machineId, (msg) => {
    stock = { available: msg.inventory.available, salesStopped: msg.inventory.salesStopped };
  }));
  unsubscribes.push(bus.subscribe(carousel.sales, bus.machineId, (msg) => {
    if (stock) stock = { ...stock, salesStopped: msg.stopped };
  }));
  unsubscribes.push(every(clock, stockRefreshMs, () => void refreshStock()));

  unsubscribes.push(bus.serve(orders.menu, async () => {
    if (!stock) await refreshStock();
    const refused = refusal() !== null;
    return ok({
      pizzas: ctx.config.menu.map((p) => ({
        ...p,
        available: !refused && stock !== null && !stock.salesStopped &&
          (stock.available[p.pizzaId] ?? 0) > 0,
      })),
    });
  }));

  /** The reply to `create` for the order of `record`. */
  const created = (record: OrderRecord): orders.CreatedOrder => {
    const actor = live.get(record.order.orderId);
    const readyAt = actor ? estimateReadyAt(actor.getSnapshot()) : null;
    return {
      orderId: record.order.orderId,
      totalAmountCents: record.order.totalAmountCents,
      estimatedTimeMs: Math.max(0, (readyAt ?? 0) - clock.now()),
      pickupCode: record.order.pickupCode,
    };
  };

  const createOrder = async (
    orderId: string,
    req: { pizzaId: string; customerEmail?: string | undefined },
  ): Promise<Result<orders.CreatedOrder>> => {
    // A retry whose first attempt made the order but lost its reply to a restart.
    const journaled = store.get(orderId);
    if (journaled) return ok(created(journaled));
    const refused = refusal();
    if (refused) return fail("CONFLICT", refused);
    const pizza = ctx.config.menu.find((p) => p.pizzaId === req.pizzaId);
    if (!pizza) return fail("NOT_FOUND", `Pizza "${req.pizzaId}" is not on the menu`);
    const reserved = await bus.request(carousel.reserve, { orderId, pizzaId: pizza.pizzaId });
    if (!reserved.ok) {
      return reserved.error.code === "CONFLICT"
        ? fail("CONFLICT", `${pizza.name} is not available: ${reserved.error.message}`)
        : reserved;
    }
    const codes = activeCodes();
    let pickupCode: string;
    do pickupCode = String(random.int(0, 9999)).padStart(4, "0"); while (codes.has(pickupCode));
    const order: Order = {
      orderId,
      machineId: bus.machineId,
      pizzaId: pizza.pizzaId,
      status: "PENDING",
      ...(req.customerEmail ? { customerEmail: req.customerEmail } : {}),
      totalAmountCents: pizza.priceCents,
      placedAt: clock.now(),
      readyAt: null,
      dispensedAt: null,
      pickupCode,
    };
    const record: OrderRecord = {
      order,
      pizza,
      stage: "pending",
      wrongCodes: 0,
      locked: false,
      paidAt: null,
      payment: null,
    };
    store.save(record, clock.now());
    spawn(record);
    return ok(created(record));
  };

  unsubscribes.push(bus.serve(orders.create, (req) => {
    const { pizzaId, customerEmail, idempotencyKey } = req;
    const body = { pizzaId, customerEmail };
    return keyed.run(
      idempotencyKey,
      "create",
      body,
      () => random.uuid(),
      (orderId) => createOrder(orderId, body),
    );
  }));

  const payOrder = async (
    req: orders.PayRequest,
  ): Promise<Result<Payment>> => {
    const actor = live.get(req.orderId);
    if (!actor) return ended(req.orderId) ?? notFound(req.orderId);
    const s = actor.getSnapshot();
    if (!s.matches("pending")) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" cannot be paid now: it is ${s.context.record.order.status}`,
      );
    }
    const details = req.paymentDetails;
    const cashStarted = s.context.record.payment?.method === "CASH" &&
      s.context.record.payment.insertedCents > 0;
    if (req.method === "CASH") {
      if (!("denominationCents" in details)) {
        return fail("BAD_REQUEST", "paymentDetails.denominationCents: required for CASH");
      }
      if (req.idempotencyKey) cashKeys.set(req.orderId, req.idempotencyKey);
      actor.send({ type: "INSERT_CASH", denominationCents: details.denominationCents });
    } else {
      if (!("token" in details)) {
        return fail("BAD_REQUEST", `paymentDetails.token: required for ${req.method}`);
      }
      if (cashStarted) {
        return fail(
          "CONFLICT",
          "Cash payment in progress: insert the rest or cancel to get it back",
        );
      }
      if (machine.cashOnly) return fail("CONFLICT", "Card reader offline: cash only");
      actor.send({ type: "PAY", method: req.method, token: details.token });
    }
    const after = await settled(actor, ["paying", "insertingCash"]);
    cashKeys.delete(req.orderId);
    const { lastError, record: { payment: paid } } = after.context;
    if (lastError && lastError.message !== "Payment declined") {
      return { ok: false, error: lastError };
    }
    if (!paid) return fail("INTERNAL", "Payment finished without a result");
    return ok(paid);
  };

  unsubscribes.push(bus.serve(orders.pay, (req) => {
    const { orderId, method, paymentDetails, idempotencyKey } = req;
    return keyed.run(
      idempotencyKey,
      "pay",
      { orderId, method, paymentDetails },
      () => orderId,
      () => payOrder(req),
    );
  }));

  unsubscribes.push(bus.serve(orders.get, (req) => {
    const actor = live.get(req.orderId);
    if (actor) return ok(view(actor.getSnapshot()));
    const record = store.get(req.orderId);
    return record ? ok(recordView(record)) : notFound(req.orderId);
  }));

  unsubscribes.push(
    bus.serve(
      orders.list,
      () => ok({ orders: [...live.values()].map((a) => view(a.getSnapshot())) }),
    ),
  );

  unsubscribes.push(bus.serve(orders.pickup, async (req) => {
    const actor = live.get(req.orderId);
    if (!actor) return ended(req.orderId) ?? notFound(req.orderId);
    const s = actor.getSnapshot();
    if (!s.matches("ready")) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" is not ready for pickup: it is ${s.context.record.order.status}`,
      );
    }
    if (s.matches({ ready: "expiring" })) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" was not collected within 30 minutes: please call staff`,
      );
    }
    if (!s.matches({ ready: "waiting" })) {
      return fail("CONFLICT", "The pickup door is already open");
    }
    actor.send({ type: "PICKUP_CODE", code: req.pickupCode });
    const after = await settledIn(actor, { ready: "opening" });
    return ok(
      after.context.pickupResult ?? { success: false, message: "No result", attemptsLeft: 0 },
    );
  }));

  unsubscribes.push(bus.serve(orders.cancel, (req) => {
    const actor = live.get(req.orderId);
    if (!actor) return ended(req.orderId) ?? notFound(req.orderId);
    const s = actor.getSnapshot();
    const customerMay = ["pending", "paying", "paymentPending", "paid"].some((st) =>
      s.matches(st as "paid")
    );
    if (req.by === "CUSTOMER" && !customerMay) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" cannot be cancelled by the customer once it is ${s.context.record.order.status}: ask staff`,
      );
    }
    if (s.matches("dispensed") || s.matches("refunding")) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" is already ${
          s.matches("dispensed") ? "DISPENSED" : "being refunded"
        }`,
      );
    }
    actor.send({ type: "CANCEL", reason: req.reason, by: req.by as CancelBy });
    const after = actor.getSnapshot();
    return ok({
      success: true,
      refundInitiated: (after.context.record.payment?.status ?? "FAILED") !== "FAILED" ||
        (after.context.record.payment?.insertedCents ?? 0) > 0,
      order: view(after),
    });
  }));

  unsubscribes.push(bus.serve(orders.dispense, async (req) => {
    const actor = live.get(req.orderId);
    if (!actor) return ended(req.orderId) ?? notFound(req.orderId);
    if (!actor.getSnapshot().matches({ ready: "waiting" })) {
      return fail(
        "CONFLICT",
        `Order "${req.orderId}" is not waiting in the pickup area: it is ${actor.getSnapshot().context.record.order.status}`,
      );
    }
    actor.send({ type: "OPEN_DOOR" });
    const after = await settledIn(actor, { ready: "opening" });
    const result = after.context.pickupResult;
    return ok({ success: result?.success ?? false, message: result?.message ?? "No result" });
  }));

  // -- events --------------------------------------------------------------

  /**
   * Asks the arm about the READY orders (all, or `orderId`'s): whose pizza it
   * saw taken, and whose door cycle ended. The arm's `taken` and `door` events
   * say so at once, but one lost event must not refund a collected pizza or
   * leave an order waiting for a door that closed.
   */
  const checkWithArm = async (orderId?: string) => {
    const asked = [...live.entries()]
      .filter(([id, a]) => (orderId ?? id) === id && a.getSnapshot().matches("ready"))
      .map(([id, a]) => ({ id, a, doorOpen: a.getSnapshot().matches({ ready: "doorOpen" }) }));
    if (asked.length === 0) return;
    const r = await bus.request(arm.status, {}, { timeoutMs: 5000 });
    if (!r.ok) return; // the next check asks again
    for (const { id, a, doorOpen } of asked) {
      if (r.value.taken.includes(id)) a.send({ type: "TAKEN" });
      // Open before we asked and not open for us now: that door cycle ended.
      else if (doorOpen && r.value.doorOrderId !== id) a.send({ type: "DOOR_CLOSED" });
    }
  };
  unsubscribes.push(every(clock, takenCheckMs, () => void checkWithArm()));
  unsubscribes.push(bus.subscribe(arm.taken, bus.machineId, (msg) => {
    live.get(msg.orderId)?.send({ type: "TAKEN" });
  }));
  unsubscribes.push(bus.subscribe(arm.door, bus.machineId, (msg) => {
    if (msg.open || !msg.orderId) return;
    live.get(msg.orderId)?.send({ type: "DOOR_CLOSED" });
    void checkWithArm(msg.orderId);
  }));
  unsubscribes.push(bus.subscribe(supervisor.machine, bus.machineId, (msg) => {
    machine = {
      status: msg.status,
      reason: msg.reason,
      cashOnly: msg.cashOnly,
      maintenance: msg.maintenance,
    };
  }));
  void bus.request(supervisor.status, {}, { timeoutMs: 2000 }).then((r) => {
    if (r.ok) {
      machine = {
        status: r.value.status,
        reason: r.value.reason,
        cashOnly: r.value.cashOnly,
        maintenance: r.value.maintenance,
      };
    }
  });

  // -- recovery ------------------------------------------------------------

  for (const record of store.unfinished()) {
    const readyAt = record.order.readyAt;
    const readyLeft = readyAt === null
      ? undefined
      : Math.max(0, readyAt + 30 * 60_000 - clock.now());
    log.log("info", "recovering order", { orderId: record.order.orderId, stage: record.stage });
    spawn(record, readyLeft);
  }
  // A pizza may have been taken while this component was down.
  void checkWithArm();
  reschedule();

  return {
    state: () => `serving(${live.size})`,
    alive: () => !stopped,
    stop() {
      stopped = true;
      for (const u of unsubscribes) u();
      for (const a of live.values()) a.stop();
      live.clear();
      return Promise.resolve();
    },
  };
}
