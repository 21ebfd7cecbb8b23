/**
 * Fleet events: what a machine tells the cloud, carried by JetStream on
 * `fleet.<machineId>.<kind>` with the event id as the message id, so a retried
 * publish within the stream's duplicate window is stored once. Ingestion makes
 * the same promise beyond the window (processed event ids in Postgres).
 *
 * Also declared here: the stream and its config, the dead-letter subjects
 * (`fleetdlq.<machineId>`, outside the stream) and the alerts the cloud
 * publishes for supervisors (`fleet.alerts.<severity>`, outside the stream too:
 * the stream takes only `fleet.*.<kind>` for the kinds below).
 *
 * @example
 * ```ts
 * const msg = { id, machineId: "m-1", ts, kind: "sale" as const, itemId: "101",
 *   priceCents: 150, soldAt: ts, source: "sync" as const };
 * await js.publish(fleet.event("m-1", "sale"), encodeFleetEvent(msg), { msgID: msg.id });
 * ```
 */
import { z } from "zod";
import { type Decoded, decodeWith, encodeWith, Envelope, MachineId, OrderId } from "./define.ts";
import {
  Alert,
  AlertSeverity,
  Cents,
  CookingSession,
  InventoryItem,
  MachineStatus,
  Order,
  Payment,
} from "./entities.ts";
import { DiscardReason } from "./carousel.ts";

/** What a fleet event is about; the last token of its subject. */
export const FleetKind = z.enum([
  "order",
  "payment",
  "inventory",
  "temperature",
  "alert",
  "fault",
  "machine",
  "sale",
  "cooking",
  "discard",
  "heartbeat",
  "metric",
]);
/** What a fleet event is about. */
export type FleetKind = z.infer<typeof FleetKind>;

/** Where an event entered the fleet: a controller on NATS, or a machine's `/sync` batch. */
export const FleetSource = z.enum(["nats", "sync"]);

/** An id of an item or pizza as machines name them. */
const ItemId = z.string().min(1).max(64);
/** A stock count. */
const Quantity = z.number().int().nonnegative().max(1_000_000);
/** A temperature any sensor of ours can read, °C. */
const TempC = z.number().min(-100).max(1500);
/** Epoch ms that Postgres can store as timestamptz. */
const EpochMs = z.number().int().nonnegative().max(8_000_000_000_000);
/** Free text, bounded. */
const Text = (max: number) => z.string().max(max);

/** A component that can report (the machine's components, plus the cloud's own). */
export const FleetComponent = z.enum([
  "oven",
  "carousel",
  "arm",
  "payment",
  "safety",
  "order",
  "supervisor",
  "sync",
  "plant",
  "cloud",
]);

/** Payload fields per kind; the envelope and `kind` come on top. */
const shapes = {
  /** An order changed (no pickup code: it is the customer's secret). */
  order: { order: Order.omit({ pickupCode: true }) },
  /** A payment changed; never a card number, the last four digits at most. */
  payment: { payment: Payment },
  /**
   * Stock: `levels` per item (sellable count), and for controllers the
   * slot-level `items` snapshot; `/sync` machines send levels only.
   */
  inventory: {
    levels: z.record(ItemId, Quantity),
    items: z.array(InventoryItem).max(500).nullable(),
    storageTempC: TempC.nullable(),
    salesStopped: z.boolean().nullable(),
    source: FleetSource,
  },
  /** A temperature sample (downsampled on the machine). */
  temperature: {
    sensor: z.enum(["oven", "storage", "ambient"]),
    tempC: TempC,
    targetC: TempC.nullable(),
    heaterPct: z.number().min(0).max(100).nullable(),
    state: Text(40).nullable(),
  },
  /** An alert raised or resolved on the machine. */
  alert: {
    component: FleetComponent,
    alert: Alert.omit({ machineId: true }).extend({
      alertId: z.string().min(1).max(64),
      message: Text(500),
    }),
  },
  /** A component faulted (hardware already safe). */
  fault: {
    component: FleetComponent,
    code: z.string().min(1).max(64),
    message: Text(500),
    activeOrderId: OrderId.nullable(),
    temperatureC: TempC.nullable(),
  },
  /** The machine's status changed (supervisor). */
  machine: {
    status: MachineStatus,
    reason: Text(200).nullable(),
    cashOnly: z.boolean(),
    maintenance: z.boolean(),
  },
  /** One sale reported by a `/sync` machine; `soldAt` is the machine's time of sale. */
  sale: {
    itemId: ItemId,
    priceCents: Cents,
    soldAt: EpochMs,
    source: FleetSource,
  },
  /** A cooking session ended (COMPLETE). */
  cooking: { session: CookingSession },
  /** A pizza left storage unsold: the food-safety (HACCP) log. */
  discard: {
    itemId: ItemId,
    pizzaId: ItemId,
    storageSlot: z.number().int().nonnegative().max(10_000),
    reason: DiscardReason,
    aboveLimitMs: z.number().int().nonnegative(),
    storageTempC: TempC,
  },
  /** The machine is alive; it reports the config version it runs. */
  heartbeat: {
    configVersion: Text(40).nullable(),
    softwareVersion: Text(40).nullable(),
    /** Fleet events waiting in the machine's outbox. */
    outboxDepth: z.number().int().nonnegative().nullable(),
    via: FleetSource,
  },
  /** A named measurement of the metric time series. */
  metric: {
    name: z.string().regex(/^[a-z0-9_.]{1,64}$/, "must be 1-64 of a-z 0-9 _ ."),
    value: z.number(),
    labels: z.record(z.string().max(64), z.string().max(200)).nullable(),
  },
} as const satisfies Record<FleetKind, z.ZodRawShape>;

type Shapes = typeof shapes;

function schemaOf<K extends FleetKind>(kind: K) {
  return Envelope.extend({ kind: z.literal(kind), ...shapes[kind] });
}

/** One schema per kind: the envelope, `kind`, and the payload. */
export const fleetSchemas = {
  order: schemaOf("order"),
  payment: schemaOf("payment"),
  inventory: schemaOf("inventory"),
  temperature: schemaOf("temperature"),
  alert: schemaOf("alert"),
  fault: schemaOf("fault"),
  machine: schemaOf("machine"),
  sale: schemaOf("sale"),
  cooking: schemaOf("cooking"),
  discard: schemaOf("discard"),
  heartbeat: schemaOf("heartbeat"),
  metric: schemaOf("metric"),
} as const satisfies { [K in FleetKind]: z.ZodType };

/** A fleet event of one kind. */
export type FleetEventOf<K extends FleetKind> = z.infer<(typeof fleetSchemas)[K]>;

/** Any fleet event, discriminated by `kind`. */
export const FleetEvent = z.discriminatedUnion("kind", [
  fleetSchemas.order,
  fleetSchemas.payment,
  fleetSchemas.inventory,
  fleetSchemas.temperature,
  fleetSchemas.alert,
  fleetSchemas.fault,
  fleetSchemas.machine,
  fleetSchemas.sale,
  fleetSchemas.cooking,
  fleetSchemas.discard,
  fleetSchemas.heartbeat,
  fleetSchemas.metric,
]);
/** Any fleet event. */
export type FleetEvent = z.infer<typeof FleetEvent>;

/** Payload of a fleet event of `K` (without envelope and kind). */
export type FleetPayload<K extends FleetKind> = z.infer<z.ZodObject<Shapes[K]>>;

/** Validates, then serialises a fleet event. @throws {z.ZodError} On an invalid event. */
export function encodeFleetEvent(msg: FleetEvent): Uint8Array {
  return encodeWith(fleetSchemas[msg.kind] as unknown as z.ZodType<FleetEvent>, msg);
}

/** Parses and validates a fleet event from the wire. */
export function decodeFleetEvent(data: Uint8Array): Decoded<FleetEvent> {
  return decodeWith(FleetEvent, data);
}

/** An alert as the cloud publishes it for supervisors on `fleet.alerts.<severity>`. */
export const FleetAlert = z.object({
  alertId: z.string(),
  machineId: z.string(),
  type: z.string(),
  severity: AlertSeverity,
  component: z.string().nullable(),
  message: z.string(),
  count: z.number().int().positive(),
  firstSeenAt: z.number().int(),
  lastSeenAt: z.number().int(),
  resolved: z.boolean(),
});
/** An alert as the cloud publishes it for supervisors. */
export type FleetAlert = z.infer<typeof FleetAlert>;

/** Validates, then serialises a fleet alert. @throws {z.ZodError} On an invalid alert. */
export function encodeFleetAlert(alert: FleetAlert): Uint8Array {
  return encodeWith(FleetAlert, alert);
}

/** Parses and validates a fleet alert. */
export function decodeFleetAlert(data: Uint8Array): Decoded<FleetAlert> {
  return decodeWith(FleetAlert, data);
}

/** How long JetStream remembers message ids to drop duplicates. */
export const fleetDuplicateWindowMs = 2 * 60 * 60_000;
/** How long the stream keeps events: the buffer while Postgres is away. */
export const fleetMaxAgeMs = 7 * 24 * 60 * 60_000;
/** How long dead letters are kept for an operator to look at. */
export const deadLetterMaxAgeMs = 30 * 24 * 60 * 60_000;

/** The JetStream stream config fields we set (nanosecond durations as JetStream wants). */
export interface FleetStreamConfig {
  name: string;
  subjects: string[];
  storage: "file";
  retention: "limits";
  discard: "old";
  duplicate_window: number;
  max_age: number;
  num_replicas: number;
}

/**
 * The names of one fleet: its subjects, streams and their configs. Production
 * uses {@linkcode fleet} (root `fleet`); tests and benches take a root of
 * their own so that they never hear each other on a shared server.
 */
export interface FleetNames {
  /** The first subject token (`fleet`). */
  readonly root: string;
  /** The events stream (`FLEET`). */
  readonly stream: string;
  /** The dead-letter stream (`FLEET_DLQ`). */
  readonly deadLetterStream: string;
  /** `fleet.<machineId>.<kind>`. */
  event(machineId: string, kind: FleetKind): string;
  /** `fleetdlq.<machineId>`: a message ingestion could not store. */
  deadLetter(machineId: string): string;
  /** `fleet.alerts.<severity>`: alerts for supervisors, not in the stream. */
  alerts(severity: z.infer<typeof AlertSeverity> | "*"): string;
  /** The machine id and kind of an event subject, or null when it is not one. */
  parse(subject: string): { machineId: string; kind: FleetKind } | null;
  /** The events stream's config. */
  streamConfig(): FleetStreamConfig;
  /** The dead-letter stream's config. */
  deadLetterStreamConfig(): FleetStreamConfig;
}

const msToNanos = (ms: number) => ms * 1_000_000;

/**
 * The names of the fleet rooted at `root`.
 *
 * @throws {RangeError} When `root` is not one lowercase subject token.
 */
export function fleetNames(root = "fleet"): FleetNames {
  if (!/^[a-z][a-z0-9_]{0,30}$/.test(root)) {
    throw new RangeError(`Fleet root must be 1-31 of a-z 0-9 _ (letter first), got "${root}"`);
  }
  const dlqRoot = `${root}dlq`;
  const stream = root.toUpperCase();
  const deadLetterStream = `${stream}_DLQ`;
  const config = (name: string, subjects: string[], maxAgeMs: number): FleetStreamConfig => ({
    name,
    subjects,
    storage: "file",
    retention: "limits",
    discard: "old",
    duplicate_window: msToNanos(fleetDuplicateWindowMs),
    max_age: msToNanos(maxAgeMs),
    num_replicas: 1,
  });
  return {
    root,
    stream,
    deadLetterStream,
    event: (machineId, kind) => `${root}.${machineId}.${kind}`,
    deadLetter: (machineId) => `${dlqRoot}.${machineId}`,
    alerts: (severity) => `${root}.alerts.${severity}`,
    parse(subject) {
      const parts = subject.split(".");
      if (parts.length !== 3 || parts[0] !== root) return null;
      const machineId = MachineId.safeParse(parts[1]);
      const kind = FleetKind.safeParse(parts[2]);
      return machineId.success && kind.success
        ? { machineId: machineId.data, kind: kind.data }
        : null;
    },
    streamConfig: () =>
      config(stream, FleetKind.options.map((k) => `${root}.*.${k}`), fleetMaxAgeMs),
    deadLetterStreamConfig: () => config(deadLetterStream, [`${dlqRoot}.>`], deadLetterMaxAgeMs),
  };
}

/** The production fleet: `fleet.<machineId>.<kind>` in stream `FLEET`. */
export const fleet: FleetNames = fleetNames("fleet");
