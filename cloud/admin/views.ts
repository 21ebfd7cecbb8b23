/**
 * What the admin API answers and the CLI prints, as zod schemas: the
 * OpenAPI document is generated from them and the queries' types are
 * inferred from them. Instants are epoch ms, money integer cents, °C.
 */
import { z } from "zod";
import { AlertSeverity, Cents } from "../../protocol/entities.ts";
import { ConfigItem } from "../db/machines.ts";

const EpochMs = z.number().int();

/** Where a machine stands. */
export const Location = z.object({
  address: z.string().nullable(),
  latitude: z.number().nullable(),
  longitude: z.number().nullable(),
});

/** A machine's latest temperatures, °C (null when never reported). */
export const Temperatures = z.object({
  storage: z.number().nullable(),
  oven: z.number().nullable(),
  ambient: z.number().nullable(),
});

/** A machine in the fleet list (seed §4.3 `GET /admin/machines`). */
export const MachineSummary = z.object({
  machineId: z.string(),
  name: z.string().nullable(),
  location: Location,
  /** The status to act on: OFFLINE when not heard from, else what the machine reports. */
  status: z.string(),
  /** What the machine last reported, whatever its connectivity (null: never reported). */
  reportedStatus: z.string().nullable(),
  statusReason: z.string().nullable(),
  maintenance: z.boolean(),
  /** Heard from within the inactivity timeout. */
  online: z.boolean(),
  /** When the cloud last heard from it (null: never). */
  lastSeen: EpochMs.nullable(),
  temperature: Temperatures,
  /** Sellable count per item, as last reported. */
  inventoryLevels: z.record(z.string(), z.number().int()),
  lastMaintenance: EpochMs.nullable(),
  /** Open alerts. */
  alerts: z.number().int(),
  /** Has an API key (`fleet machine add`); false for machines only heard of. */
  registered: z.boolean(),
  softwareVersion: z.string().nullable(),
  config: z.object({
    desiredVersion: z.string().nullable(),
    reportedVersion: z.string().nullable(),
    inSync: z.boolean(),
  }),
});
/** A machine in the fleet list. */
export type MachineSummary = z.infer<typeof MachineSummary>;

/** One stock line (seed §4.3 inventory `items`). */
export const StockItem = z.object({
  pizzaId: z.string(),
  pizzaName: z.string().nullable(),
  quantity: z.number().int(),
  /** Null for machines that report levels only (`/sync`). */
  storageSlot: z.number().int().nullable(),
  /** Null for machines that report levels only. */
  expirationDate: EpochMs.nullable(),
});
/** One stock line. */
export type StockItem = z.infer<typeof StockItem>;

/** A pizza below its minimum (seed §4.4 `lowStockItems`). */
export const LowStockItem = z.object({
  pizzaId: z.string(),
  pizzaName: z.string().nullable(),
  currentQuantity: z.number().int(),
  /** Below this count a pizza is low (the machine's `lowStockThreshold`). */
  minimumQuantity: z.number().int(),
});
/** A pizza below its minimum. */
export type LowStockItem = z.infer<typeof LowStockItem>;

/** A machine's stock and what runs low. */
export const MachineInventory = z.object({
  machineId: z.string(),
  /** When the machine last reported its stock. */
  reportedAt: EpochMs.nullable(),
  items: z.array(StockItem),
  lowStockItems: z.array(LowStockItem),
});
/** A machine's stock and what runs low. */
export type MachineInventory = z.infer<typeof MachineInventory>;

/** A machine with pizzas below their minimum (seed §4.4 `GET /admin/low-inventory`). */
export const LowInventoryMachine = z.object({
  machineId: z.string(),
  name: z.string().nullable(),
  location: Location,
  lowStockItems: z.array(LowStockItem),
});
/** A machine with pizzas below their minimum. */
export type LowInventoryMachine = z.infer<typeof LowInventoryMachine>;

/** An alert. */
export const AlertView = z.object({
  alertId: z.string(),
  machineId: z.string(),
  type: z.string(),
  severity: AlertSeverity,
  component: z.string().nullable(),
  message: z.string(),
  /** `machine`, or `cloud` (monitor, ingestion). */
  source: z.string(),
  /** How often it was raised while open. */
  count: z.number().int(),
  firstSeenAt: EpochMs,
  lastSeenAt: EpochMs,
  resolved: z.boolean(),
  resolvedAt: EpochMs.nullable(),
  resolvedBy: z.string().nullable(),
  /** Raised while the machine was in maintenance mode: kept, not published. */
  muted: z.boolean(),
});
/** An alert. */
export type AlertView = z.infer<typeof AlertView>;

/** An order still in progress. */
export const ActiveOrder = z.object({
  orderId: z.string(),
  pizzaId: z.string(),
  status: z.string(),
  totalAmountCents: Cents,
  placedAt: EpochMs,
  updatedAt: EpochMs,
});

/** One machine in detail (seed §4.3 `GET /admin/machine/{id}/status`). */
export const MachineDetail = MachineSummary.extend({
  temperatures: z.array(z.object({
    sensor: z.string(),
    tempC: z.number(),
    targetC: z.number().nullable(),
    at: EpochMs,
  })),
  inventory: z.array(StockItem),
  activeOrders: z.array(ActiveOrder),
  recentAlerts: z.array(AlertView),
  /** Percent of the last 24 h it served (see `uptime.ts`); null when not known that long. */
  uptime: z.number().nullable(),
  /** Fleet events waiting in its outbox at its last heartbeat. */
  outboxDepth: z.number().int().nullable(),
});
/** One machine in detail. */
export type MachineDetail = z.infer<typeof MachineDetail>;

/** Config as desired by the cloud and as reported by the machine (the device shadow). */
export const ConfigShadow = z.object({
  machineId: z.string(),
  desired: z.object({
    /** Send it back as `expectedSeq` to change the config. */
    seq: z.number().int(),
    version: z.string(),
    items: z.array(ConfigItem),
    /** The full controller config, when one was given. */
    config: z.unknown(),
    createdBy: z.string().nullable(),
    createdAt: EpochMs,
  }).nullable(),
  reported: z.object({ version: z.string(), at: EpochMs.nullable() }).nullable(),
  /** The machine runs the desired version (or nothing is desired). */
  inSync: z.boolean(),
});
/** The device shadow of a machine's config. */
export type ConfigShadow = z.infer<typeof ConfigShadow>;

/** A pizza by how often it sold. */
export const PopularPizza = z.object({
  pizzaId: z.string(),
  pizzaName: z.string().nullable(),
  orders: z.number().int(),
  revenueCents: z.number().int(),
});

/** Figures of a range (seed §4.3 `GET /admin/analytics`). */
export const Analytics = z.object({
  startDate: z.string(),
  endDate: z.string(),
  machineId: z.string().nullable(),
  /** Dispensed orders plus sales reported through `/sync`. */
  totalOrders: z.number().int(),
  ordersBySource: z.object({ controller: z.number().int(), sync: z.number().int() }),
  revenueCents: z.number().int(),
  /** Mean time from placing to dispensing of controller orders (null: none). */
  averageOrderTimeMs: z.number().int().nullable(),
  /** The ten best sellers, most sold first. */
  popularPizzas: z.array(PopularPizza),
  /** Percent of the range each machine served. */
  machineUptime: z.record(z.string(), z.number().nullable()),
});
/** Figures of a range. */
export type Analytics = z.infer<typeof Analytics>;

/** A restock recommendation (seed §6.2). */
export const RestockRecommendation = z.object({
  machineId: z.string(),
  pizzaId: z.string(),
  pizzaName: z.string().nullable(),
  currentQty: z.number().int(),
  /** Average sold per day over the history. */
  dailyAverage: z.number(),
  daysUntilEmpty: z.number(),
  recommendedQty: z.number().int(),
  urgency: z.enum(["HIGH", "MEDIUM"]),
});
/** A restock recommendation. */
export type RestockRecommendation = z.infer<typeof RestockRecommendation>;

/** A maintenance log entry (seed §3.6). */
export const MaintenanceLog = z.object({
  logId: z.string(),
  machineId: z.string(),
  type: z.enum(["ROUTINE", "REPAIR", "CLEANING", "RESTOCKING"]),
  performedBy: z.string(),
  description: z.string(),
  details: z.unknown(),
  startedAt: EpochMs,
  completedAt: EpochMs.nullable(),
});
/** A maintenance log entry. */
export type MaintenanceLog = z.infer<typeof MaintenanceLog>;

/** An operator's action. */
export const AuditEntry = z.object({
  atMs: EpochMs,
  /** The token's id, or null for the CLI. */
  tokenId: z.string().nullable(),
  actor: z.string(),
  role: z.string().nullable(),
  action: z.string(),
  machineId: z.string().nullable(),
  /** `ok`, or the error code it ended with. */
  outcome: z.string(),
  details: z.unknown().optional(),
});
/** An operator's action. */
export type AuditEntry = z.infer<typeof AuditEntry>;
