/**
 * Test support for the API tests: a tiny stand-in for the machine's actors on
 * a real test bus. It serves every command the API calls, records what it
 * received, and answers with fixed sample values or with a scripted error.
 */
import { safetyStatus } from "../testing/fixtures.ts";
import { connectTestBus, type TestBus } from "../testing/nats.ts";
import { type CommandDef, Component, fail, ok, type Result } from "../protocol/define.ts";
import * as order from "../protocol/order.ts";
import * as oven from "../protocol/oven.ts";
import * as carousel from "../protocol/carousel.ts";
import * as safety from "../protocol/safety.ts";
import * as supervisor from "../protocol/supervisor.ts";
import type { Inventory } from "../protocol/carousel.ts";
import type { OvenStatus } from "../protocol/oven.ts";
import type { SupervisorStatus } from "../protocol/supervisor.ts";
import type { CookingSession, Payment } from "../protocol/entities.ts";
import type { OrderView } from "../protocol/order.ts";
import type { Clock } from "../clock/clock.ts";
import { createMachineApi, type MachineApi } from "./app.ts";

/** The technician token of the test API. */
export const testToken = "tech-secret-token";

/** The order id the fake machine knows; any other is NOT_FOUND. */
export const knownOrderId = "0b5d3c2e-6a1f-4c1e-9a43-3f1d2f6e7a10";

/** The pickup code of the known order. */
export const knownPickupCode = "4821";

/** The one pizza on the fake menu. */
export const margherita = {
  pizzaId: "margherita",
  name: "Margherita",
  description: "Tomato, mozzarella, basil",
  size: "MEDIUM" as const,
  toppings: ["tomato", "mozzarella", "basil"],
  priceCents: 899,
  calories: 850,
  allergens: ["gluten", "milk"],
  imageUrl: "/img/margherita.png",
  cookingTimeMs: 90_000,
  cookingTempC: 250,
};

/** One received command: its verb (`order.create`) and payload without envelope. */
export interface Received {
  verb: string;
  payload: Record<string, unknown>;
}

/** A fake machine on the bus. */
export interface TestMachine {
  /** The bus the API uses. */
  api: TestBus;
  /** The bus the fake actors serve on (same machine id, other connection). */
  actors: TestBus;
  machineId: string;
  /** Every command received, in order. */
  received: Received[];
  /** Replies to force per verb (`order.create` → an error result) instead of the sample. */
  script: Map<string, Result<never>>;
  /** Verbs that never answer (to see the API's deadline). */
  silent: Set<string>;
  /** When set, every command fails with this result (the fuzz tests' refusal). */
  refuseAll: Result<never> | null;
  /** The API under test, built on `api`. */
  machineApi: MachineApi;
  close(): Promise<void>;
}

const envelopeKeys = new Set(["id", "machineId", "ts", "orderId"]);

function payloadOf(req: Record<string, unknown>, keepOrderId: boolean): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(req).filter(([k]) => !envelopeKeys.has(k) || (k === "orderId" && keepOrderId)),
  );
}

/** A sample payment of the known order. */
export function samplePayment(clock: Clock, cash: boolean): Payment {
  return {
    paymentId: "pay-1",
    orderId: knownOrderId,
    amountCents: margherita.priceCents,
    method: cash ? "CASH" : "CARD",
    status: "AUTHORIZED",
    transactionId: cash ? null : "tx-1",
    last4: cash ? null : "4242",
    insertedCents: cash ? 1000 : 0,
    changeCents: cash ? 101 : 0,
    gatewayResponse: null,
    processedAt: clock.now(),
  };
}

/** A sample view of the known order. */
export function sampleOrder(clock: Clock, machineId: string): OrderView {
  return {
    orderId: knownOrderId,
    machineId,
    pizzaId: margherita.pizzaId,
    status: "PAID",
    totalAmountCents: margherita.priceCents,
    placedAt: clock.now() - 10_000,
    readyAt: null,
    dispensedAt: null,
    pickupCode: knownPickupCode,
    queuePosition: 2,
    estimatedReadyAt: clock.now() + 200_000,
    pickupLocked: false,
    payment: samplePayment(clock, false),
  };
}

function sampleSession(clock: Clock, machineId: string, orderId: string, targetC: number) {
  const session: CookingSession = {
    sessionId: "session-1",
    orderId,
    machineId,
    startTemperatureC: 200,
    targetTemperatureC: targetC,
    currentTemperatureC: 231.5,
    estimatedCompletion: clock.now() + 95_000,
    timeRemainingMs: 45_500,
    status: "COOKING",
    startedAt: clock.now(),
    completedAt: null,
  };
  return session;
}

function sampleInventory(clock: Clock, machineId: string): Inventory {
  return {
    items: [{
      itemId: "item-1",
      machineId,
      pizzaId: margherita.pizzaId,
      quantity: 3,
      storageSlot: 2,
      expiresAt: clock.now() + 86_400_000,
      addedAt: clock.now(),
    }],
    available: { [margherita.pizzaId]: 3 },
    reservations: [],
    storageTempC: 3.5,
    salesStopped: false,
    stopReason: null,
  };
}

function sampleSupervisor(maintenance: boolean): SupervisorStatus {
  const components = Object.fromEntries(
    Component.options.map((c) => [c, { state: "running", alive: true, lastSeen: 1, restarts: 0 }]),
  ) as SupervisorStatus["components"];
  return {
    status: maintenance ? "MAINTENANCE" : "OPERATIONAL",
    reason: maintenance ? "Cleaning" : null,
    cashOnly: false,
    maintenance,
    components,
    alerts: [],
  };
}

/** Options of {@linkcode startTestMachine}. */
export interface TestMachineOptions {
  /** Clock speed of the API's bus (default 1). */
  speed?: number;
}

/** Starts the fake actors and the API under test on one fresh machine id. */
export async function startTestMachine(options: TestMachineOptions = {}): Promise<TestMachine> {
  const api = await connectTestBus({ speed: options.speed ?? 1 });
  const actors = await connectTestBus({ machineId: api.machineId });
  const clock = actors.clock;
  const machineId = api.machineId;
  const received: Received[] = [];
  const script = new Map<string, Result<never>>();
  const machine = {
    api,
    actors,
    machineId,
    received,
    script,
    silent: new Set<string>(),
    refuseAll: null as Result<never> | null,
  };

  const serve = <Q, R>(
    def: CommandDef<Q, R>,
    answer: (req: Q & { orderId?: string }) => Result<R>,
    keepOrderId = true,
  ) => {
    const verb = `${def.component}.${def.verb}`;
    actors.bus.serve(def, (req) => {
      const raw = req as unknown as Record<string, unknown>;
      received.push({ verb, payload: payloadOf(raw, keepOrderId) });
      if (machine.silent.has(verb)) return new Promise<Result<R>>(() => {});
      if (machine.refuseAll) return machine.refuseAll;
      return script.get(verb) ?? answer(req as Q & { orderId?: string });
    });
  };
  const knownOr = <T>(orderId: string, value: () => T): Result<T> =>
    orderId === knownOrderId ? ok(value()) : fail("NOT_FOUND", `Order "${orderId}" is unknown`);

  serve(order.menu, () => ok({ pizzas: [{ ...margherita, available: true }] }), false);
  serve(order.create, () =>
    ok({
      orderId: knownOrderId,
      totalAmountCents: margherita.priceCents,
      estimatedTimeMs: 180_500,
      pickupCode: knownPickupCode,
    }), false);
  serve(
    order.pay,
    (req) => knownOr(req.orderId, () => samplePayment(clock, req.method === "CASH")),
  );
  serve(order.get, (req) => knownOr(req.orderId, () => sampleOrder(clock, machineId)));
  serve(
    order.pickup,
    (req) =>
      knownOr(
        req.orderId,
        () =>
          req.pickupCode === knownPickupCode
            ? { success: true, message: "Door open: take your pizza", attemptsLeft: 5 }
            : { success: false, message: "Wrong pickup code", attemptsLeft: 4 },
      ),
  );
  serve(order.cancel, (req) =>
    knownOr(req.orderId, () => ({
      success: true,
      refundInitiated: true,
      order: { ...sampleOrder(clock, machineId), status: "REFUNDED" as const },
    })));
  serve(
    order.dispense,
    (req) => knownOr(req.orderId, () => ({ success: true, message: "Pizza handed out" })),
  );
  serve(oven.cook, (req) => ok(sampleSession(clock, machineId, req.orderId, req.targetC)));
  serve(oven.status, () => {
    const status: OvenStatus = {
      state: "cooking",
      temperatureC: 248.5,
      targetC: 250,
      heaterPct: 60,
      session: sampleSession(clock, machineId, knownOrderId, 250),
      fault: null,
    };
    return ok(status);
  }, false);
  serve(carousel.restock, () => ok(sampleInventory(clock, machineId)), false);
  serve(carousel.service, () => ok(sampleInventory(clock, machineId)), false);
  serve(carousel.inventory, () => ok(sampleInventory(clock, machineId)), false);
  serve(safety.reset, () => ok(safetyStatus(false)), false);
  serve(safety.status, () => ok(safetyStatus(false)), false);
  serve(supervisor.status, () => ok(sampleSupervisor(false)), false);
  serve(supervisor.maintenance, (req) => ok(sampleSupervisor(req.enable)), false);
  // The API must not ask before every subscription reached the server.
  await actors.raw.flush();

  const machineApi = createMachineApi({
    bus: api.bus,
    clock: api.clock,
    machineId,
    techToken: testToken,
    log: api.log,
  });
  return Object.assign(machine, {
    machineApi,
    close: async () => {
      machineApi.close();
      await Promise.all([api.close(), actors.close()]);
    },
  });
}

/** Calls the API in-process with an optional JSON body, technician token and other headers. */
export async function call(
  api: MachineApi,
  method: string,
  path: string,
  options: {
    body?: unknown;
    rawBody?: string;
    token?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.rawBody !== undefined) body = options.rawBody;
  else if (options.body !== undefined) body = JSON.stringify(options.body);
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await api.app.request(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}
