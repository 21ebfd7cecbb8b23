/**
 * The fleet as operators see it (seed 003 §4.3, §4.4): machines with their
 * connectivity, one machine's status, stock and low stock, and config as
 * desired and reported (the device shadow). Read-only queries over what
 * ingestion and `/sync` stored; the admin API and the CLI share them.
 */
import type { Queryable } from "../db/database.ts";
import type { ConfigItem } from "../db/machines.ts";
import { alertColumns, type AlertRow, alertView } from "./alerts.ts";
import type {
  ConfigShadow,
  LowInventoryMachine,
  MachineDetail,
  MachineInventory,
  MachineSummary,
  StockItem,
} from "./views.ts";
import { uptimeByMachine } from "./uptime.ts";
import { at, fromJson, ms, toMs } from "./sql.ts";

/** How long a machine may stay quiet before it counts as offline (10 min: two missed syncs). */
export const defaultOfflineAfterMs = 10 * 60_000;

/** A filter of {@linkcode listMachines}. */
export interface MachineFilter {
  /** Effective status (OFFLINE for machines not heard from). */
  status?: string | undefined;
  /** Case-insensitive part of the address or name. */
  location?: string | undefined;
  /** Only this machine. */
  machineId?: string | undefined;
  limit?: number | undefined;
  offset?: number | undefined;
}

/** Clock and timeout that decide online/offline. */
export interface Connectivity {
  nowMs: number;
  offlineAfterMs: number;
}

interface MachineRow {
  machine_id: string;
  name: string | null;
  location_address: string | null;
  latitude: number | null;
  longitude: number | null;
  registered: boolean;
  status: string;
  status_known: boolean;
  status_reason: string | null;
  maintenance: boolean;
  software_version: string | null;
  desired_config_version: string | null;
  reported_config_version: string | null;
  last_seen_ms: number | null;
  last_maintenance_ms: number | null;
  online: boolean;
  effective: string;
  storage_c: number | null;
  oven_c: number | null;
  ambient_c: number | null;
  open_alerts: number;
  levels: unknown;
}

const latestTemp = (sensor: string) =>
  `LEFT JOIN LATERAL (SELECT t.temp_c FROM temperatures t
      WHERE t.machine_id = m.machine_id AND t.sensor = '${sensor}'
      ORDER BY t.at DESC LIMIT 1) t_${sensor} ON true`;

/** Machines matching `filter`, by id. */
export async function listMachines(
  db: Queryable,
  conn: Connectivity,
  filter: MachineFilter = {},
): Promise<MachineSummary[]> {
  const params: unknown[] = [conn.nowMs - conn.offlineAfterMs];
  const where: string[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replaceAll("?", `$${params.length}`));
  };
  if (filter.status !== undefined) add("x.effective = ?", filter.status);
  if (filter.location !== undefined) {
    add(
      "position(lower(?) IN lower(coalesce(x.location_address, '') || ' ' || coalesce(x.name, ''))) > 0",
      filter.location,
    );
  }
  if (filter.machineId !== undefined) add("x.machine_id = ?", filter.machineId);
  params.push(filter.limit ?? 1000, filter.offset ?? 0);
  const rows = await db.query<MachineRow>(
    `SELECT * FROM (
       SELECT m.machine_id, m.name, m.location_address, m.latitude, m.longitude, m.registered,
              m.status, m.status_at IS NOT NULL AS status_known, m.status_reason, m.maintenance,
              m.software_version, m.desired_config_version, m.reported_config_version,
              ${ms("m.last_seen_at")} AS last_seen_ms,
              ${ms("m.last_maintenance_at")} AS last_maintenance_ms,
              coalesce(m.last_seen_at >= ${at("$1")}, false) AS online,
              CASE WHEN NOT coalesce(m.last_seen_at >= ${at("$1")}, false) THEN 'OFFLINE'
                   WHEN m.maintenance THEN 'MAINTENANCE'
                   WHEN m.status_at IS NULL THEN 'OPERATIONAL'
                   ELSE m.status END AS effective,
              t_storage.temp_c AS storage_c, t_oven.temp_c AS oven_c,
              t_ambient.temp_c AS ambient_c,
              (SELECT count(*)::int FROM alerts a
                WHERE a.machine_id = m.machine_id AND NOT a.resolved) AS open_alerts,
              (SELECT coalesce(jsonb_object_agg(l.item_id, l.quantity), '{}'::jsonb)
                 FROM inventory_levels l WHERE l.machine_id = m.machine_id) AS levels
         FROM machines m
         ${latestTemp("storage")}
         ${latestTemp("oven")}
         ${latestTemp("ambient")}
     ) x
     ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
     ORDER BY x.machine_id
     LIMIT $${params.length - 1} OFFSET $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    machineId: r.machine_id,
    name: r.name,
    location: { address: r.location_address, latitude: r.latitude, longitude: r.longitude },
    status: r.effective,
    reportedStatus: r.status_known ? r.status : null,
    statusReason: r.status_reason,
    maintenance: r.maintenance,
    online: r.online,
    lastSeen: toMs(r.last_seen_ms),
    temperature: { storage: r.storage_c, oven: r.oven_c, ambient: r.ambient_c },
    inventoryLevels: fromJson<Record<string, number>>(r.levels),
    lastMaintenance: toMs(r.last_maintenance_ms),
    alerts: r.open_alerts,
    registered: r.registered,
    softwareVersion: r.software_version,
    config: {
      desiredVersion: r.desired_config_version,
      reportedVersion: r.reported_config_version,
      inSync: r.desired_config_version === null ||
        r.desired_config_version === r.reported_config_version,
    },
  }));
}

/** Whether the cloud knows `machineId` (registered, or heard from). */
export async function machineExists(db: Queryable, machineId: string): Promise<boolean> {
  const rows = await db.query("SELECT 1 FROM machines WHERE machine_id = $1", [machineId]);
  return rows.length > 0;
}

/** Display names of items: the machine's desired config first, then the fleet catalogue. */
export async function itemNames(
  db: Queryable,
  machineIds: readonly string[],
): Promise<(machineId: string, itemId: string) => string | null> {
  const catalogue = await db.query<{ id: string; name: string }>(
    "SELECT pizza_id AS id, name FROM pizzas",
  );
  const configured = machineIds.length
    ? await db.query<{ machine_id: string; id: string; name: string }>(
      `SELECT c.machine_id, i->>'itemId' AS id, i->>'name' AS name
         FROM machines m
         JOIN machine_configs c ON c.machine_id = m.machine_id AND c.seq = m.desired_config_seq
         CROSS JOIN LATERAL jsonb_array_elements(c.items) i
        WHERE m.machine_id = ANY($1::text[])
       UNION ALL
       SELECT c.machine_id, p->>'pizzaId', p->>'name'
         FROM machines m
         JOIN machine_configs c ON c.machine_id = m.machine_id AND c.seq = m.desired_config_seq
         CROSS JOIN LATERAL jsonb_array_elements(
           CASE WHEN jsonb_typeof(c.config->'menu') = 'array' THEN c.config->'menu'
                ELSE '[]'::jsonb END) p
        WHERE m.machine_id = ANY($1::text[])`,
      [[...machineIds]],
    )
    : [];
  const fleet = new Map(catalogue.map((r) => [r.id, r.name]));
  const own = new Map(configured.map((r) => [`${r.machine_id}\u0000${r.id}`, r.name]));
  return (machineId, itemId) => own.get(`${machineId}\u0000${itemId}`) ?? fleet.get(itemId) ?? null;
}

/** The stock of `machineId`: slot-level when the machine reports slots, else per item. */
export async function machineInventory(
  db: Queryable,
  machineId: string,
): Promise<MachineInventory> {
  const names = await itemNames(db, [machineId]);
  const slots = await db.query<{
    pizza_id: string;
    quantity: number;
    storage_slot: number;
    expires_ms: number;
  }>(
    `SELECT pizza_id, quantity, storage_slot, ${ms("expires_at")} AS expires_ms
       FROM inventory_items WHERE machine_id = $1 ORDER BY storage_slot, item_id`,
    [machineId],
  );
  const levels = await db.query<{ item_id: string; quantity: number; updated_ms: number }>(
    `SELECT item_id, quantity, ${ms("updated_at")} AS updated_ms
       FROM inventory_levels WHERE machine_id = $1 ORDER BY item_id`,
    [machineId],
  );
  const threshold = await lowStockThreshold(db, machineId);
  const items: StockItem[] = slots.length
    ? slots.map((s) => ({
      pizzaId: s.pizza_id,
      pizzaName: names(machineId, s.pizza_id),
      quantity: s.quantity,
      storageSlot: s.storage_slot,
      expirationDate: toMs(s.expires_ms),
    }))
    : levels.map((l) => ({
      pizzaId: l.item_id,
      pizzaName: names(machineId, l.item_id),
      quantity: l.quantity,
      storageSlot: null,
      expirationDate: null,
    }));
  const reported = levels.reduce((m, l) => Math.max(m, l.updated_ms), -Infinity);
  return {
    machineId,
    reportedAt: Number.isFinite(reported) ? Math.round(reported) : null,
    items,
    lowStockItems: levels.filter((l) => l.quantity < threshold).map((l) => ({
      pizzaId: l.item_id,
      pizzaName: names(machineId, l.item_id),
      currentQuantity: l.quantity,
      minimumQuantity: threshold,
    })),
  };
}

async function lowStockThreshold(db: Queryable, machineId: string): Promise<number> {
  const rows = await db.query<{ n: number }>(
    "SELECT low_stock_threshold AS n FROM machines WHERE machine_id = $1",
    [machineId],
  );
  return rows[0]?.n ?? 2;
}

/** Every machine with at least one pizza below its minimum, by id. */
export async function lowInventory(db: Queryable): Promise<LowInventoryMachine[]> {
  const rows = await db.query<{
    machine_id: string;
    name: string | null;
    location_address: string | null;
    latitude: number | null;
    longitude: number | null;
    item_id: string;
    quantity: number;
    threshold: number;
  }>(
    `SELECT m.machine_id, m.name, m.location_address, m.latitude, m.longitude,
            l.item_id, l.quantity, m.low_stock_threshold AS threshold
       FROM inventory_levels l JOIN machines m ON m.machine_id = l.machine_id
      WHERE l.quantity < m.low_stock_threshold
      ORDER BY m.machine_id, l.item_id`,
  );
  const names = await itemNames(db, [...new Set(rows.map((r) => r.machine_id))]);
  const out: LowInventoryMachine[] = [];
  for (const r of rows) {
    let m = out[out.length - 1];
    if (!m || m.machineId !== r.machine_id) {
      m = {
        machineId: r.machine_id,
        name: r.name,
        location: { address: r.location_address, latitude: r.latitude, longitude: r.longitude },
        lowStockItems: [],
      };
      out.push(m);
    }
    m.lowStockItems.push({
      pizzaId: r.item_id,
      pizzaName: names(r.machine_id, r.item_id),
      currentQuantity: r.quantity,
      minimumQuantity: r.threshold,
    });
  }
  return out;
}

/** Orders not finished are active; older than this they are shown as stuck all the same. */
const finishedStatuses = "('DISPENSED', 'CANCELLED', 'REFUNDED')";

/** `machineId` in detail, or null when unknown. */
export async function machineDetail(
  db: Queryable,
  machineId: string,
  conn: Connectivity,
): Promise<MachineDetail | null> {
  const [summary] = await listMachines(db, conn, { machineId });
  if (!summary) return null;
  const temps = await db.query<
    { sensor: string; temp_c: number; target_c: number | null; at_ms: number }
  >(
    `SELECT s.sensor, t.temp_c, t.target_c, ${ms("t.at")} AS at_ms
       FROM (VALUES ('storage'), ('oven'), ('ambient')) s(sensor)
       JOIN LATERAL (SELECT temp_c, target_c, at FROM temperatures
                      WHERE machine_id = $1 AND sensor = s.sensor
                      ORDER BY at DESC LIMIT 1) t ON true
      ORDER BY s.sensor`,
    [machineId],
  );
  const orders = await db.query<{
    order_id: string;
    pizza_id: string;
    status: string;
    total_amount_cents: number;
    placed_ms: number;
    updated_ms: number;
  }>(
    `SELECT order_id, pizza_id, status, total_amount_cents, ${ms("placed_at")} AS placed_ms,
            ${ms("updated_at")} AS updated_ms
       FROM orders WHERE machine_id = $1 AND status NOT IN ${finishedStatuses}
      ORDER BY placed_at DESC LIMIT 100`,
    [machineId],
  );
  const alerts = await db.query<AlertRow>(
    `SELECT ${alertColumns} FROM alerts a WHERE a.machine_id = $1
      ORDER BY a.last_seen_at DESC, a.alert_id LIMIT 20`,
    [machineId],
  );
  const outbox = await db.query<{ outbox_depth: number | null }>(
    "SELECT outbox_depth FROM machines WHERE machine_id = $1",
    [machineId],
  );
  const inventory = await machineInventory(db, machineId);
  const dayMs = 24 * 60 * 60_000;
  const uptime = await uptimeByMachine(db, [machineId], conn.nowMs - dayMs, conn.nowMs, conn.nowMs);
  return {
    ...summary,
    temperatures: temps.map((t) => ({
      sensor: t.sensor,
      tempC: t.temp_c,
      targetC: t.target_c,
      at: Math.round(t.at_ms),
    })),
    inventory: inventory.items,
    activeOrders: orders.map((o) => ({
      orderId: o.order_id,
      pizzaId: o.pizza_id,
      status: o.status,
      totalAmountCents: o.total_amount_cents,
      placedAt: Math.round(o.placed_ms),
      updatedAt: Math.round(o.updated_ms),
    })),
    recentAlerts: alerts.map(alertView),
    uptime: uptime[machineId] ?? null,
    outboxDepth: outbox[0]?.outbox_depth ?? null,
  };
}

/** The config shadow of `machineId`, or null when the machine is unknown. */
export async function configShadow(db: Queryable, machineId: string): Promise<ConfigShadow | null> {
  const rows = await db.query<{
    seq: number;
    reported: string | null;
    reported_ms: number | null;
    version: string | null;
    items: unknown;
    config: unknown;
    created_by: string | null;
    created_ms: number | null;
  }>(
    `SELECT m.desired_config_seq AS seq, m.reported_config_version AS reported,
            ${ms("m.reported_config_at")} AS reported_ms,
            c.version, c.items, c.config, c.created_by, ${ms("c.created_at")} AS created_ms
       FROM machines m
       LEFT JOIN machine_configs c
         ON c.machine_id = m.machine_id AND c.seq = m.desired_config_seq
      WHERE m.machine_id = $1`,
    [machineId],
  );
  const r = rows[0];
  if (!r) return null;
  const desired = r.version === null ? null : {
    seq: r.seq,
    version: r.version,
    items: fromJson<ConfigItem[]>(r.items),
    config: r.config === null ? null : fromJson<unknown>(r.config),
    createdBy: r.created_by,
    createdAt: Math.round(r.created_ms ?? 0),
  };
  return {
    machineId,
    desired,
    reported: r.reported === null ? null : { version: r.reported, at: toMs(r.reported_ms) },
    inSync: desired === null || desired.version === r.reported,
  };
}
