/**
 * The live feed (seed 003 §4.5): `WS /api/v1/machine/{machineId}/live` turns
 * bus events into the seed's four messages. Each socket subscribes once when
 * it opens and unsubscribes when it closes; what it remembers between events
 * (last oven target, whether a temperature is already out of band) is its own.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Unsubscribe } from "../bus/bus.ts";
import type { EventMessage } from "../protocol/define.ts";
import * as order from "../protocol/order.ts";
import * as oven from "../protocol/oven.ts";
import * as carousel from "../protocol/carousel.ts";
import * as arm from "../protocol/arm.ts";
import * as safety from "../protocol/safety.ts";
import * as payment from "../protocol/payment.ts";
import { OrderStatus } from "../protocol/entities.ts";
import { type ApiDeps, createSubApp, MachineParams, ourMachine } from "./context.ts";
import { errorDefault, errorResponse } from "./errors.ts";

/** While cooking, an oven further than this from its target raises a TEMPERATURE_ALERT. */
export const ovenOffTargetC = 15;

/** Storage above this is a TEMPERATURE_ALERT (food safety, seed §6.7). */
export const storageLimitC = 5;

/** Live sockets one machine serves at once; more are refused with 503. */
export const maxLiveSockets = 32;

/** A socket whose unsent backlog grows past this is closed: the client cannot keep up. */
export const maxBufferedBytes = 1 << 20;

/** `ORDER_UPDATE`: an order changed status. */
export const OrderUpdateMessage = z.object({
  type: z.literal("ORDER_UPDATE"),
  orderId: z.uuid(),
  status: OrderStatus,
  queuePosition: z.number().int().nullable(),
  timestamp: z.number().int(),
});

/** `TEMPERATURE_ALERT`: the oven or storage is out of its band. */
export const TemperatureAlertMessage = z.object({
  type: z.literal("TEMPERATURE_ALERT"),
  zone: z.enum(["STORAGE", "OVEN"]),
  currentTemp: z.number().nullable(),
  targetTemp: z.number().nullable(),
  reason: z.string(),
  timestamp: z.number().int(),
});

/** `EQUIPMENT_ERROR`: a component faulted. */
export const EquipmentErrorMessage = z.object({
  type: z.literal("EQUIPMENT_ERROR"),
  component: z.enum(["OVEN", "DISPENSER", "PAYMENT", "STORAGE"]),
  errorCode: z.string(),
  message: z.string(),
  timestamp: z.number().int(),
});

/** `COOKING_PROGRESS`: a cooking session's temperature and time left. */
export const CookingProgressMessage = z.object({
  type: z.literal("COOKING_PROGRESS"),
  orderId: z.uuid(),
  sessionId: z.string(),
  status: z.string(),
  temperature: z.number(),
  /** Seconds of baking still owed. */
  timeRemaining: z.number().int().nonnegative(),
  timestamp: z.number().int(),
});

/** `CONNECTED`: sent once the socket's subscriptions are in place. */
export const ConnectedMessage = z.object({
  type: z.literal("CONNECTED"),
  machineId: z.string(),
  timestamp: z.number().int(),
});

/** Any message of the live feed. */
export const LiveMessage = z.discriminatedUnion("type", [
  OrderUpdateMessage,
  TemperatureAlertMessage,
  EquipmentErrorMessage,
  CookingProgressMessage,
  ConnectedMessage,
]);
/** Any message of the live feed. */
export type LiveMessage = z.infer<typeof LiveMessage>;

const componentOfTrip: Record<safety.TripCause, "OVEN" | "DISPENSER" | "STORAGE"> = {
  ESTOP: "DISPENSER",
  SERVICE_DOOR: "DISPENSER",
  OVEN_OVER_TEMPERATURE: "OVEN",
  SMOKE: "OVEN",
  STORAGE_DANGER_ZONE: "STORAGE",
};

const temperatureFaults: ReadonlySet<string> = new Set(["OVER_TEMPERATURE", "THERMOCOUPLE_RANGE"]);

/**
 * Turns bus events into live messages for one socket. Temperature bands alert
 * once when left, not on every sample, and again only after coming back.
 */
export class LiveTranslator {
  private ovenTargetC: number | null = null;
  private ovenOffTarget = false;
  private storageTempC: number | null = null;
  private storageAbove = false;

  /** An order `updated` event. */
  orderUpdated(msg: EventMessage<typeof order.updated>): LiveMessage[] {
    return [{
      type: "ORDER_UPDATE",
      orderId: msg.order.orderId,
      status: msg.order.status,
      queuePosition: msg.order.queuePosition,
      timestamp: msg.ts,
    }];
  }

  /** An oven `progress` event. */
  ovenProgress(msg: EventMessage<typeof oven.progress>): LiveMessage[] {
    return [{
      type: "COOKING_PROGRESS",
      orderId: msg.orderId,
      sessionId: msg.sessionId,
      status: msg.status,
      temperature: msg.temperatureC,
      timeRemaining: Math.ceil(msg.timeRemainingMs / 1000),
      timestamp: msg.ts,
    }];
  }

  /** An oven `temperature` sample. */
  ovenTemperature(msg: EventMessage<typeof oven.temperature>): LiveMessage[] {
    this.ovenTargetC = msg.targetC;
    const off = msg.state === "cooking" &&
      Math.abs(msg.temperatureC - msg.targetC) > ovenOffTargetC;
    const entered = off && !this.ovenOffTarget;
    this.ovenOffTarget = off;
    if (!entered) return [];
    return [{
      type: "TEMPERATURE_ALERT",
      zone: "OVEN",
      currentTemp: msg.temperatureC,
      targetTemp: msg.targetC,
      reason: `Oven is more than ${ovenOffTargetC} °C from its target while cooking`,
      timestamp: msg.ts,
    }];
  }

  /** An oven `fault` event: an equipment error, and a temperature alert when heat caused it. */
  ovenFault(msg: EventMessage<typeof oven.fault>): LiveMessage[] {
    const out: LiveMessage[] = [];
    if (temperatureFaults.has(msg.code)) {
      out.push({
        type: "TEMPERATURE_ALERT",
        zone: "OVEN",
        currentTemp: msg.temperatureC,
        targetTemp: this.ovenTargetC,
        reason: msg.message,
        timestamp: msg.ts,
      });
    }
    out.push({
      type: "EQUIPMENT_ERROR",
      component: "OVEN",
      errorCode: msg.code,
      message: msg.message,
      timestamp: msg.ts,
    });
    return out;
  }

  /** A carousel `temperature` sample. */
  storageTemperature(msg: EventMessage<typeof carousel.temperature>): LiveMessage[] {
    this.storageTempC = msg.storageTempC;
    const above = msg.storageTempC > storageLimitC;
    const entered = above && !this.storageAbove;
    this.storageAbove = above;
    if (!entered) return [];
    return [{
      type: "TEMPERATURE_ALERT",
      zone: "STORAGE",
      currentTemp: msg.storageTempC,
      targetTemp: storageLimitC,
      reason: `Storage is above ${storageLimitC} °C`,
      timestamp: msg.ts,
    }];
  }

  /** A carousel `sales` event: stopped sales are a storage temperature alert. */
  storageSales(msg: EventMessage<typeof carousel.sales>): LiveMessage[] {
    if (!msg.stopped) return [];
    return [{
      type: "TEMPERATURE_ALERT",
      zone: "STORAGE",
      currentTemp: this.storageTempC,
      targetTemp: storageLimitC,
      reason: msg.reason ?? "Sales stopped by storage temperature",
      timestamp: msg.ts,
    }];
  }

  /** An arm `fault` event. */
  armFault(msg: EventMessage<typeof arm.fault>): LiveMessage[] {
    return [{
      type: "EQUIPMENT_ERROR",
      component: "DISPENSER",
      errorCode: msg.code,
      message: msg.message,
      timestamp: msg.ts,
    }];
  }

  /** A safety `tripped` event: one error per cause, on the component it concerns. */
  safetyTripped(msg: EventMessage<typeof safety.tripped>): LiveMessage[] {
    return msg.causes.map((cause) => ({
      type: "EQUIPMENT_ERROR" as const,
      component: componentOfTrip[cause],
      errorCode: `SAFETY_${cause}`,
      message: `Safety tripped by ${cause}: heater power cut, arm halted`,
      timestamp: msg.ts,
    }));
  }

  /** A payment `reader` event: offline is an error; back online needs no message. */
  readerChanged(msg: EventMessage<typeof payment.readerChanged>): LiveMessage[] {
    if (msg.cardReaderOnline) return [];
    return [{
      type: "EQUIPMENT_ERROR",
      component: "PAYMENT",
      errorCode: "CARD_READER_OFFLINE",
      message: "Card reader is offline: cash only",
      timestamp: msg.ts,
    }];
  }
}

/**
 * Subscribes `send` to every event the feed forwards, through one translator;
 * returns the unsubscribe of them all.
 */
export function subscribeLive(
  bus: TypedBus,
  machineId: string,
  send: (msg: LiveMessage) => void,
): Unsubscribe {
  const t = new LiveTranslator();
  const forward = <M>(translate: (msg: M) => LiveMessage[]) => (msg: M) => {
    for (const out of translate(msg)) send(out);
  };
  const subs = [
    bus.subscribe(order.updated, machineId, forward((m) => t.orderUpdated(m))),
    bus.subscribe(oven.progress, machineId, forward((m) => t.ovenProgress(m))),
    bus.subscribe(oven.temperature, machineId, forward((m) => t.ovenTemperature(m))),
    bus.subscribe(oven.fault, machineId, forward((m) => t.ovenFault(m))),
    bus.subscribe(carousel.temperature, machineId, forward((m) => t.storageTemperature(m))),
    bus.subscribe(carousel.sales, machineId, forward((m) => t.storageSales(m))),
    bus.subscribe(arm.fault, machineId, forward((m) => t.armFault(m))),
    bus.subscribe(safety.tripped, machineId, forward((m) => t.safetyTripped(m))),
    bus.subscribe(payment.readerChanged, machineId, forward((m) => t.readerChanged(m))),
  ];
  return () => {
    for (const unsubscribe of subs) unsubscribe();
  };
}

/** The live feed's route and the sockets it holds open. */
export interface LiveRoutes {
  app: OpenAPIHono;
  /** Sockets upgraded and not yet closed. */
  openSockets(): number;
  /** Closes every socket (1001 going away) and drops its subscriptions. */
  closeAll(): void;
}

/** The path of the live feed, OpenAPI style. */
export const livePath = "/api/v1/machine/{machineId}/live";

/** The live feed's route. */
export function liveRoutes(deps: ApiDeps): LiveRoutes {
  const { bus, clock, log, machineId } = deps;
  const app = createSubApp(log);
  // Every upgraded socket; its unsubscribe once it opened and subscribed.
  const sockets = new Map<WebSocket, Unsubscribe | null>();

  app.openAPIRegistry.registerPath({
    method: "get",
    path: livePath,
    tags: ["live"],
    summary: "WebSocket feed of order updates, temperature alerts, errors, cooking progress",
    request: { params: MachineParams },
    responses: {
      101: {
        description: "Switching to WebSocket; each message is one LiveMessage as JSON",
        content: { "application/json": { schema: LiveMessage } },
      },
      default: errorDefault,
    },
  });

  const drop = (socket: WebSocket) => {
    const unsubscribe = sockets.get(socket);
    sockets.delete(socket);
    unsubscribe?.();
  };

  app.get(livePath.replace("{machineId}", ":machineId"), ourMachine(machineId), (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return errorResponse(c, "BAD_REQUEST", 'Expected a WebSocket request ("Upgrade: websocket")');
    }
    if (sockets.size >= maxLiveSockets) {
      return errorResponse(c, "UNAVAILABLE", `Live feed is full (${maxLiveSockets} sockets)`);
    }
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(c.req.raw);
    } catch (err) {
      return errorResponse(c, "BAD_REQUEST", `WebSocket upgrade failed: ${String(err)}`);
    }
    const { socket, response } = upgraded;
    const send = (msg: LiveMessage) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (socket.bufferedAmount > maxBufferedBytes) {
        drop(socket);
        socket.close(1013, "Client too slow for the live feed");
        return;
      }
      socket.send(JSON.stringify(msg));
    };
    sockets.set(socket, null);
    socket.onopen = () => {
      if (!sockets.has(socket)) return;
      sockets.set(socket, subscribeLive(bus, machineId, send));
      // The flush makes sure the server has our subscriptions before the client hears we are ready.
      bus.bus.flush().then(
        () => send({ type: "CONNECTED", machineId, timestamp: clock.now() }),
        (err: unknown) => log.log("warn", "live feed flush failed", { err: String(err) }),
      );
    };
    socket.onclose = () => drop(socket);
    socket.onerror = () => drop(socket);
    return response;
  });

  return {
    app,
    openSockets: () => sockets.size,
    closeAll() {
      for (const socket of [...sockets.keys()]) {
        drop(socket);
        try {
          socket.close(1001, "Server closing");
        } catch {
          // Already closing: nothing left to do.
        }
      }
    },
  };
}
