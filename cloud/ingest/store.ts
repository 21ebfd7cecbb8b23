/**
 * Writes a batch of fleet events in the caller's transaction, idempotently,
 * with set-based statements (a JSON recordset per kind): a batch costs a dozen statements
 * whatever its size. A redelivered event writes nothing twice:
 *
 * - records keyed by the event (sales, faults, discards, status log) or by a
 *   natural key (a sensor's sample at an instant, a metric at an instant) are
 *   inserted with `ON CONFLICT DO NOTHING`;
 * - state (orders, payments, cooking sessions, stock, machine status and
 *   reported config) only moves forward in (event time, status rank), so a
 *   replay rewrites the same values and a stale event changes nothing;
 * - what is not idempotent by nature (an alert repeat raises a counter, a dead
 *   letter raises an alert) passes `processed_events` first, which admits
 *   each event id once.
 *
 * Concurrency between workers: rows are written in key order, and the
 * machine rows (the only hot rows) are locked last, in one sorted statement;
 * the `last_seen_at` refresh skips rows another worker holds, since that
 * worker refreshes them anyway.
 */
import type { Queryable } from "../db/database.ts";
import type { FleetAlert, FleetEvent, FleetEventOf, FleetKind } from "../../protocol/fleet.ts";

/** What one batch wrote. */
export interface StoreOutcome {
  /** Events applied (written, or state already at that point). */
  applied: number;
  /** Events found already written (redeliveries, repeats within the batch). */
  duplicates: number;
  /** Alerts opened by this batch and not muted: for `fleet.alerts.<severity>`. */
  opened: FleetAlert[];
  /** Machines of the batch, for the caller's cache once committed. */
  machineIds: string[];
}

/** A message ingestion refuses, with the reason. */
export interface DeadLetter {
  subject: string;
  /** The machine the subject names (or `_invalid`). */
  machineId: string;
  /** A stable id for this message: its message id, or its stream sequence and time. */
  letterId: string;
  reason: string;
}

/** Order statuses in their order of progress, for "only move forward". */
const orderRank =
  "ARRAY['PENDING','PAYMENT_PROCESSING','PAYMENT_PENDING','PAID','PREPARING','READY','DISPENSED','CANCELLED','REFUNDED']::text[]";
/** Payment statuses in their order of progress. */
const paymentRank =
  "ARRAY['PENDING','AUTHORIZED','COMPLETED','FAILED','VOIDED','REFUNDED']::text[]";

const orderRanks = [
  "PENDING",
  "PAYMENT_PROCESSING",
  "PAYMENT_PENDING",
  "PAID",
  "PREPARING",
  "READY",
  "DISPENSED",
  "CANCELLED",
  "REFUNDED",
];
const paymentRanks = ["PENDING", "AUTHORIZED", "COMPLETED", "FAILED", "VOIDED", "REFUNDED"];

/** Epoch ms column → timestamptz. */
const ts = (col: string) => `to_timestamp(${col} / 1000.0)`;

type ByKind = { [K in FleetKind]: FleetEventOf<K>[] };

function groupByKind(events: readonly FleetEvent[]): ByKind {
  const by = {
    order: [],
    payment: [],
    inventory: [],
    temperature: [],
    alert: [],
    fault: [],
    machine: [],
    sale: [],
    cooking: [],
    discard: [],
    heartbeat: [],
    metric: [],
  } as ByKind;
  for (const e of events) (by[e.kind] as FleetEvent[]).push(e);
  return by;
}

/** The last of `events` per key by `rank` (later in the batch wins ties). */
function latestBy<T>(events: readonly T[], key: (e: T) => string, rank: (e: T) => number[]): T[] {
  const best = new Map<string, T>();
  for (const e of events) {
    const k = key(e);
    const prev = best.get(k);
    if (!prev || compareRanks(rank(prev), rank(e)) <= 0) best.set(k, e);
  }
  return [...best.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** `rows` sorted by `key` (computed once per row). */
function byKey<T>(rows: readonly T[], key: (r: T) => string): T[] {
  return rows
    .map((r) => ({ k: key(r), r }))
    .sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0))
    .map((x) => x.r);
}

const k2 = (a: string, b: string) => `${a}\u0000${b}`;

/**
 * Columns as one JSON parameter for `json_to_recordset($1::text::json)`:
 * serialised natively, it costs the client a third of what array parameters do.
 */
function columns(names: readonly string[], values: readonly unknown[][]): string {
  const n = values[0]?.length ?? 0;
  const rows = new Array<Record<string, unknown>>(n);
  for (let i = 0; i < n; i++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) row[names[c]!] = values[c]![i];
    rows[i] = row;
  }
  return JSON.stringify(rows);
}

/**
 * What a worker remembers between batches: machines known to have a row
 * (saves an INSERT per batch) and when it last refreshed each one's
 * `last_seen_at`. Bounded; forgetting costs one statement more, never a write.
 */
export class MachineCache {
  private readonly known = new Set<string>();
  private readonly refreshed = new Map<string, number>();
  /** Creates a cache of at most `capacity` machines, refreshing last seen every `periodMs`. */
  constructor(private readonly capacity = 100_000, readonly periodMs = 15_000) {}
  /** Whether `id` has a row. */
  has(id: string): boolean {
    return this.known.has(id);
  }
  /** Whether `id`'s last seen is due for a refresh at `nowMs`. */
  due(id: string, nowMs: number): boolean {
    const at = this.refreshed.get(id);
    return at === undefined || nowMs - at >= this.periodMs;
  }
  /** Remembers what a committed transaction did. */
  committed(ids: Iterable<string>, refreshed: Iterable<string>, nowMs: number): void {
    if (this.known.size >= this.capacity) this.known.clear();
    if (this.refreshed.size >= this.capacity) this.refreshed.clear();
    for (const id of ids) this.known.add(id);
    for (const id of refreshed) this.refreshed.set(id, nowMs);
  }
}

/** `sql` (an INSERT) with the number of rows it inserted. */
async function insertCount(tx: Queryable, sql: string, params: unknown[]): Promise<number> {
  const rows = await tx.query<{ n: number }>(
    `WITH ins AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM ins`,
    params,
  );
  return rows[0]?.n ?? 0;
}

/**
 * Writes `events` in `tx`. `nowMs` and `cache` decide which machines' last
 * seen to refresh; call `cache.committed(...)` with the outcome after commit.
 */
export async function storeEvents(
  tx: Queryable,
  events: readonly FleetEvent[],
  cache: MachineCache = new MachineCache(),
  nowMs = 0,
): Promise<StoreOutcome & { refreshed: string[] }> {
  // Repeats within the batch never reach the database.
  const unique = new Map<string, FleetEvent>();
  for (const e of events) {
    const key = k2(e.machineId, e.id);
    if (!unique.has(key)) unique.set(key, e);
  }
  const batch = [...unique.values()];
  let duplicates = events.length - batch.length;
  if (!batch.length) {
    return { applied: 0, duplicates, opened: [], machineIds: [], refreshed: [] };
  }

  const machineIds = [...new Set(batch.map((e) => e.machineId))].sort();
  const unknown = machineIds.filter((id) => !cache.has(id));
  if (unknown.length) {
    await tx.query(
      `INSERT INTO machines (machine_id) SELECT unnest($1::text[]) ORDER BY 1
       ON CONFLICT DO NOTHING`,
      [unknown],
    );
  }

  const by = groupByKind(batch);
  duplicates += await appendSeries(tx, by);
  await upsertOrders(tx, by.order);
  await upsertPayments(tx, by.payment);
  await upsertCooking(tx, by.cooking);
  const alerts = await applyAlerts(tx, by.alert);
  duplicates += alerts.duplicates;
  const refreshed = await updateMachines(tx, by, batch, cache, nowMs);
  return {
    applied: events.length - duplicates,
    duplicates,
    opened: alerts.opened,
    machineIds,
    refreshed,
  };
}

/** Appends records; returns how many were already there. */
async function appendSeries(tx: Queryable, by: ByKind): Promise<number> {
  let duplicates = 0;
  if (by.temperature.length) {
    const r = byKey(by.temperature, (e) => k2(e.machineId, `${e.sensor}\u0000${e.ts}`));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO temperatures (machine_id, at, sensor, temp_c, target_c, heater_pct, state)
       SELECT m, ${ts("t")}, s, c, g, h, st
         FROM json_to_recordset($1::text::json)
           AS x(m text, t float8, s text, c float8, g float8, h float8, st text)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "t", "s", "c", "g", "h", "st"], [
        r.map((e) => e.machineId),
        r.map((e) => e.ts),
        r.map((e) => e.sensor),
        r.map((e) => e.tempC),
        r.map((e) => e.targetC),
        r.map((e) => e.heaterPct),
        r.map((e) => e.state),
      ])],
    );
  }
  if (by.metric.length) {
    const r = byKey(by.metric, (e) => k2(e.machineId, `${e.name}\u0000${e.ts}`));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO metrics (machine_id, at, name, value, labels)
       SELECT m, ${ts("t")}, n, v, l
         FROM json_to_recordset($1::text::json)
           AS x(m text, t float8, n text, v float8, l jsonb)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "t", "n", "v", "l"], [
        r.map((e) => e.machineId),
        r.map((e) => e.ts),
        r.map((e) => e.name),
        r.map((e) => e.value),
        r.map((e) => e.labels),
      ])],
    );
  }
  if (by.sale.length) {
    const r = byKey(by.sale, (e) => k2(e.machineId, e.id));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO sales (machine_id, sale_id, item_id, price_cents, sold_at, source, order_id)
       SELECT m, i, it, p, ${ts("t")}, s, o
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, it text, p int, t float8, s text, o text)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "i", "it", "p", "t", "s", "o"], [
        r.map((e) => e.machineId),
        r.map((e) => e.id),
        r.map((e) => e.itemId),
        r.map((e) => e.priceCents),
        r.map((e) => e.soldAt),
        r.map((e) => e.source),
        r.map((e) => e.orderId ?? null),
      ])],
    );
  }
  if (by.fault.length) {
    const r = byKey(by.fault, (e) => k2(e.machineId, e.id));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO faults (machine_id, event_id, component, code, message, order_id, temp_c, at)
       SELECT m, i, c, cd, msg, o, tc, ${ts("t")}
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, c text, cd text, msg text, o text, tc float8, t float8)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "i", "c", "cd", "msg", "o", "tc", "t"], [
        r.map((e) => e.machineId),
        r.map((e) => e.id),
        r.map((e) => e.component),
        r.map((e) => e.code),
        r.map((e) => e.message),
        r.map((e) => e.activeOrderId),
        r.map((e) => e.temperatureC),
        r.map((e) => e.ts),
      ])],
    );
  }
  if (by.discard.length) {
    const r = byKey(by.discard, (e) => k2(e.machineId, e.id));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO food_safety_log (machine_id, event_id, item_id, pizza_id, storage_slot, reason,
                                    above_limit_ms, storage_temp_c, at)
       SELECT m, i, it, p, sl, rs, al, st, ${ts("t")}
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, it text, p text, sl int, rs text, al float8, st float8, t float8)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "i", "it", "p", "sl", "rs", "al", "st", "t"], [
        r.map((e) => e.machineId),
        r.map((e) => e.id),
        r.map((e) => e.itemId),
        r.map((e) => e.pizzaId),
        r.map((e) => e.storageSlot),
        r.map((e) => e.reason),
        r.map((e) => e.aboveLimitMs),
        r.map((e) => e.storageTempC),
        r.map((e) => e.ts),
      ])],
    );
  }
  if (by.machine.length) {
    const r = byKey(by.machine, (e) => k2(e.machineId, e.id));
    duplicates += r.length - await insertCount(
      tx,
      `INSERT INTO machine_status_log (machine_id, event_id, at, status, reason, cash_only,
                                       maintenance)
       SELECT m, i, ${ts("t")}, s, r, c, mt
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, t float8, s text, r text, c bool, mt bool)
       ON CONFLICT DO NOTHING`,
      [columns(["m", "i", "t", "s", "r", "c", "mt"], [
        r.map((e) => e.machineId),
        r.map((e) => e.id),
        r.map((e) => e.ts),
        r.map((e) => e.status),
        r.map((e) => e.reason),
        r.map((e) => e.cashOnly),
        r.map((e) => e.maintenance),
      ])],
    );
  }
  return duplicates;
}

async function upsertOrders(tx: Queryable, events: FleetEventOf<"order">[]): Promise<void> {
  if (!events.length) return;
  const rank = (s: string) => orderRanks.indexOf(s);
  const r = latestBy(
    events,
    (e) => k2(e.machineId, e.order.orderId),
    (e) => [e.ts, rank(e.order.status)],
  );
  await tx.query(
    `INSERT INTO orders (machine_id, order_id, pizza_id, status, customer_email,
                         total_amount_cents, payment_method, payment_transaction_id, placed_at,
                         ready_at, dispensed_at, reason, updated_at, event_id)
     SELECT m, o, p, s, em, amt, pm, ptx, ${ts("pl")}, ${ts("rd")}, ${ts("ds")}, rs, ${ts("t")}, ev
       FROM json_to_recordset($1::text::json)
         AS x(m text, o text, p text, s text, em text, amt int, pm text, ptx text, pl float8,
              rd float8, ds float8, rs text, t float8, ev text)
    ON CONFLICT (machine_id, order_id) DO UPDATE SET
       pizza_id = EXCLUDED.pizza_id, status = EXCLUDED.status,
       customer_email = EXCLUDED.customer_email, total_amount_cents = EXCLUDED.total_amount_cents,
       payment_method = EXCLUDED.payment_method,
       payment_transaction_id = EXCLUDED.payment_transaction_id, placed_at = EXCLUDED.placed_at,
       ready_at = EXCLUDED.ready_at, dispensed_at = EXCLUDED.dispensed_at,
       reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at, event_id = EXCLUDED.event_id
     WHERE (orders.updated_at, array_position(${orderRank}, orders.status))
        <= (EXCLUDED.updated_at, array_position(${orderRank}, EXCLUDED.status))`,
    [columns(["m", "o", "p", "s", "em", "amt", "pm", "ptx", "pl", "rd", "ds", "rs", "t", "ev"], [
      r.map((e) => e.machineId),
      r.map((e) => e.order.orderId),
      r.map((e) => e.order.pizzaId),
      r.map((e) => e.order.status),
      r.map((e) => e.order.customerEmail ?? null),
      r.map((e) => e.order.totalAmountCents),
      r.map((e) => e.order.paymentMethod ?? null),
      r.map((e) => e.order.paymentTransactionId ?? null),
      r.map((e) => e.order.placedAt),
      r.map((e) => e.order.readyAt),
      r.map((e) => e.order.dispensedAt),
      r.map((e) => e.order.reason ?? null),
      r.map((e) => e.ts),
      r.map((e) => e.id),
    ])],
  );
}

async function upsertPayments(tx: Queryable, events: FleetEventOf<"payment">[]): Promise<void> {
  if (!events.length) return;
  const r = latestBy(
    events,
    (e) => k2(e.machineId, e.payment.paymentId),
    (e) => [e.ts, paymentRanks.indexOf(e.payment.status)],
  );
  await tx.query(
    `INSERT INTO payments (machine_id, payment_id, order_id, amount_cents, method, status,
                           transaction_id, last4, inserted_cents, change_cents, gateway_response,
                           processed_at, updated_at, event_id)
     SELECT m, p, o, amt, me, s, tx, l4, ins, chg, gw, ${ts("pr")}, ${ts("t")}, ev
       FROM json_to_recordset($1::text::json)
         AS x(m text, p text, o text, amt int, me text, s text, tx text, l4 text, ins int,
              chg int, gw jsonb, pr float8, t float8, ev text)
    ON CONFLICT (machine_id, payment_id) DO UPDATE SET
       order_id = EXCLUDED.order_id, amount_cents = EXCLUDED.amount_cents,
       method = EXCLUDED.method, status = EXCLUDED.status,
       transaction_id = EXCLUDED.transaction_id, last4 = EXCLUDED.last4,
       inserted_cents = EXCLUDED.inserted_cents, change_cents = EXCLUDED.change_cents,
       gateway_response = EXCLUDED.gateway_response, processed_at = EXCLUDED.processed_at,
       updated_at = EXCLUDED.updated_at, event_id = EXCLUDED.event_id
     WHERE (payments.updated_at, array_position(${paymentRank}, payments.status))
        <= (EXCLUDED.updated_at, array_position(${paymentRank}, EXCLUDED.status))`,
    [columns(["m", "p", "o", "amt", "me", "s", "tx", "l4", "ins", "chg", "gw", "pr", "t", "ev"], [
      r.map((e) => e.machineId),
      r.map((e) => e.payment.paymentId),
      r.map((e) => e.payment.orderId),
      r.map((e) => e.payment.amountCents),
      r.map((e) => e.payment.method),
      r.map((e) => e.payment.status),
      r.map((e) => e.payment.transactionId),
      r.map((e) => e.payment.last4),
      r.map((e) => e.payment.insertedCents),
      r.map((e) => e.payment.changeCents),
      r.map((e) => e.payment.gatewayResponse),
      r.map((e) => e.payment.processedAt),
      r.map((e) => e.ts),
      r.map((e) => e.id),
    ])],
  );
}

async function upsertCooking(tx: Queryable, events: FleetEventOf<"cooking">[]): Promise<void> {
  if (!events.length) return;
  const r = latestBy(events, (e) => k2(e.machineId, e.session.sessionId), (e) => [e.ts]);
  await tx.query(
    `INSERT INTO cooking_sessions (machine_id, session_id, order_id, start_temp_c, target_temp_c,
                                   final_temp_c, status, started_at, completed_at, cook_time_ms)
     SELECT m, s, o, st, tg, fi, stt, ${ts("sa")}, ${ts("ca")}, (ca - sa)::int
       FROM json_to_recordset($1::text::json)
           AS x(m text, s text, o text, st float8, tg float8, fi float8, stt text, sa float8,
                ca float8)
    ON CONFLICT (machine_id, session_id) DO UPDATE SET
       final_temp_c = EXCLUDED.final_temp_c, status = EXCLUDED.status,
       completed_at = EXCLUDED.completed_at, cook_time_ms = EXCLUDED.cook_time_ms`,
    [columns(["m", "s", "o", "st", "tg", "fi", "stt", "sa", "ca"], [
      r.map((e) => e.machineId),
      r.map((e) => e.session.sessionId),
      r.map((e) => e.session.orderId),
      r.map((e) => e.session.startTemperatureC),
      r.map((e) => e.session.targetTemperatureC),
      r.map((e) => e.session.currentTemperatureC),
      r.map((e) => e.session.status),
      r.map((e) => e.session.startedAt),
      r.map((e) => e.session.completedAt),
    ])],
  );
}

/** One alert raised (or repeated) in `tx`; returns the row when it opened a new alert. */
export async function raiseAlert(
  tx: Queryable,
  a: {
    machineId: string;
    alertId: string;
    type: string;
    severity: string;
    component: string | null;
    message: string;
    orderId: string | null;
    source: "machine" | "cloud";
    machineAlertId: string | null;
    atMs: number;
  },
): Promise<FleetAlert | null> {
  const rows = await tx.query<{
    alert_id: string;
    count: number;
    muted: boolean;
    first_ms: number;
    last_ms: number;
  }>(
    `INSERT INTO alerts (machine_id, alert_id, alert_type, severity, component, message, order_id,
                         source, machine_alert_id, count, first_seen_at, last_seen_at, muted)
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 1, ${ts("$10::float8")}, ${ts("$10::float8")},
            COALESCE((SELECT maintenance FROM machines WHERE machine_id = $1), false)
      WHERE NOT EXISTS (
        -- The same machine alert, already resolved by a later event that committed first.
        SELECT 1 FROM alerts r
         WHERE r.machine_id = $1 AND r.machine_alert_id = $9 AND r.resolved
           AND r.resolved_at >= ${ts("$10::float8")})
     ON CONFLICT (machine_id, alert_type) WHERE NOT resolved DO UPDATE SET
       count = alerts.count + 1,
       last_seen_at = GREATEST(alerts.last_seen_at, EXCLUDED.last_seen_at),
       severity = EXCLUDED.severity, message = EXCLUDED.message, component = EXCLUDED.component
     RETURNING alert_id, count, muted,
       (extract(epoch FROM first_seen_at) * 1000)::float8 AS first_ms,
       (extract(epoch FROM last_seen_at) * 1000)::float8 AS last_ms`,
    [
      a.machineId,
      a.alertId,
      a.type,
      a.severity,
      a.component,
      a.message,
      a.orderId,
      a.source,
      a.machineAlertId,
      a.atMs,
    ],
  );
  const row = rows[0];
  if (!row || row.count !== 1 || row.muted) return null;
  return {
    alertId: row.alert_id,
    machineId: a.machineId,
    type: a.type,
    severity: a.severity as FleetAlert["severity"],
    component: a.component,
    message: a.message,
    count: 1,
    firstSeenAt: Math.round(row.first_ms),
    lastSeenAt: Math.round(row.last_ms),
    resolved: false,
  };
}

async function applyAlerts(
  tx: Queryable,
  events: FleetEventOf<"alert">[],
): Promise<{ opened: FleetAlert[]; duplicates: number }> {
  if (!events.length) return { opened: [], duplicates: 0 };
  // A repeat raises a counter: only events never seen before may.
  const gate = byKey(events, (e) => k2(e.machineId, e.id));
  const admitted = await tx.query<{ machine_id: string; event_id: string }>(
    `INSERT INTO processed_events (machine_id, event_id, kind, event_at)
     SELECT m, e, 'alert', ${ts("t")}
       FROM json_to_recordset($1::text::json)
           AS x(m text, e text, t float8)
     ON CONFLICT DO NOTHING
     RETURNING machine_id, event_id`,
    [columns(["m", "e", "t"], [
      gate.map((e) => e.machineId),
      gate.map((e) => e.id),
      gate.map((e) => e.ts),
    ])],
  );
  const fresh = new Set(admitted.map((r) => k2(r.machine_id, r.event_id)));
  // Per event, in key order and, within a key, in batch order: raise and
  // resolve of one alert must apply in the order they happened.
  const sorted = events
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => fresh.has(k2(e.machineId, e.id)))
    .sort((x, y) => {
      const a = k2(x.e.machineId, x.e.alert.type), b = k2(y.e.machineId, y.e.alert.type);
      return a < b ? -1 : a > b ? 1 : x.i - y.i;
    });
  const opened: FleetAlert[] = [];
  for (const { e } of sorted) {
    if (e.alert.resolved) {
      await tx.query(
        `UPDATE alerts SET resolved = true, resolved_at = ${ts("$3::float8")},
                resolved_by = 'machine'
          WHERE machine_id = $1 AND alert_type = $2 AND NOT resolved`,
        [e.machineId, e.alert.type, e.alert.resolvedAt ?? e.ts],
      );
      continue;
    }
    const alert = await raiseAlert(tx, {
      machineId: e.machineId,
      alertId: e.id,
      type: e.alert.type,
      severity: e.alert.severity,
      component: e.component,
      message: e.alert.message,
      orderId: e.alert.orderId ?? null,
      source: "machine",
      machineAlertId: e.alert.alertId,
      atMs: e.ts,
    });
    if (alert) opened.push(alert);
  }
  return { opened, duplicates: events.length - fresh.size };
}

/** Updates machine rows; returns the machines whose last seen is now fresh. */
async function updateMachines(
  tx: Queryable,
  by: ByKind,
  batch: FleetEvent[],
  cache: MachineCache,
  nowMs: number,
): Promise<string[]> {
  const latestPerMachine = <T extends FleetEvent>(r: T[]) =>
    latestBy(r, (e) => e.machineId, (e) => [e.ts]);
  const status = latestPerMachine(by.machine);
  const beats = latestPerMachine(by.heartbeat);
  const stock = latestPerMachine(by.inventory);
  const snapshots = latestPerMachine(by.inventory.filter((e) => e.items !== null));

  // Hot rows: locked in one sorted statement, after every other write.
  // Stock levels have their own guard per row: only snapshots need the machine row.
  const touched = [...new Set([...status, ...beats, ...snapshots].map((e) => e.machineId))]
    .sort();
  if (touched.length) {
    await tx.query(
      `SELECT machine_id FROM machines WHERE machine_id = ANY($1::text[])
        ORDER BY machine_id FOR NO KEY UPDATE`,
      [touched],
    );
  }
  if (status.length) {
    await tx.query(
      `UPDATE machines m SET status = x.s, status_reason = x.r, cash_only = x.c,
              maintenance = x.mt, status_at = ${ts("x.t")}, updated_at = now()
         FROM json_to_recordset($1::text::json)
           AS x(id text, s text, r text, c bool, mt bool, t float8)
        WHERE m.machine_id = ANY($2::text[]) AND m.machine_id = x.id
          AND (m.status_at IS NULL OR m.status_at <= ${ts("x.t")})`,
      [
        columns(["id", "s", "r", "c", "mt", "t"], [
          status.map((e) => e.machineId),
          status.map((e) => e.status),
          status.map((e) => e.reason),
          status.map((e) => e.cashOnly),
          status.map((e) => e.maintenance),
          status.map((e) => e.ts),
        ]),
        status.map((e) => e.machineId),
      ],
    );
  }
  if (beats.length) {
    await tx.query(
      `UPDATE machines m SET
              reported_config_version = COALESCE(x.cv, m.reported_config_version),
              software_version = COALESCE(x.sv, m.software_version),
              outbox_depth = COALESCE(x.od, m.outbox_depth),
              reported_config_at = ${ts("x.t")}, updated_at = now()
         FROM json_to_recordset($1::text::json)
           AS x(id text, cv text, sv text, od int, t float8)
        WHERE m.machine_id = ANY($2::text[]) AND m.machine_id = x.id
          AND (m.reported_config_at IS NULL OR m.reported_config_at <= ${ts("x.t")})`,
      [
        columns(["id", "cv", "sv", "od", "t"], [
          beats.map((e) => e.machineId),
          beats.map((e) => e.configVersion),
          beats.map((e) => e.softwareVersion),
          beats.map((e) => e.outboxDepth),
          beats.map((e) => e.ts),
        ]),
        beats.map((e) => e.machineId),
      ],
    );
  }
  if (stock.length) {
    const lines = stock.flatMap((e) =>
      Object.entries(e.levels).map(([itemId, quantity]) => ({ e, itemId, quantity }))
    );
    const sortedLines = byKey(lines, (l) => k2(l.e.machineId, l.itemId));
    if (sortedLines.length) {
      await tx.query(
        `INSERT INTO inventory_levels (machine_id, item_id, quantity, updated_at)
         SELECT m, i, q, ${ts("t")}
           FROM json_to_recordset($1::text::json)
           AS x(m text, i text, q int, t float8)
        ON CONFLICT (machine_id, item_id) DO UPDATE SET
           quantity = EXCLUDED.quantity, updated_at = EXCLUDED.updated_at
         WHERE inventory_levels.updated_at <= EXCLUDED.updated_at`,
        [columns(["m", "i", "q", "t"], [
          sortedLines.map((l) => l.e.machineId),
          sortedLines.map((l) => l.itemId),
          sortedLines.map((l) => l.quantity),
          sortedLines.map((l) => l.e.ts),
        ])],
      );
    }
  }
  if (snapshots.length) {
    const newer = await tx.query<{ machine_id: string }>(
      `UPDATE machines m SET inventory_at = ${ts("x.t")}
         FROM unnest($1::text[], $2::float8[]) AS x(id, t)
        WHERE m.machine_id = x.id AND (m.inventory_at IS NULL OR m.inventory_at <= ${ts("x.t")})
       RETURNING m.machine_id`,
      [snapshots.map((e) => e.machineId), snapshots.map((e) => e.ts)],
    );
    const apply = new Set(newer.map((r) => r.machine_id));
    const chosen = snapshots.filter((e) => apply.has(e.machineId));
    if (chosen.length) {
      await tx.query("DELETE FROM inventory_items WHERE machine_id = ANY($1::text[])", [
        chosen.map((e) => e.machineId),
      ]);
      const items = byKey(
        chosen.flatMap((e) => (e.items ?? []).map((item) => ({ e, item }))),
        (l) => k2(l.e.machineId, l.item.itemId),
      );
      if (items.length) {
        await tx.query(
          `INSERT INTO inventory_items (machine_id, item_id, pizza_id, quantity, storage_slot,
                                        expires_at, added_at, updated_at)
           SELECT m, i, p, q, s, ${ts("ex")}, ${ts("ad")}, ${ts("t")}
             FROM json_to_recordset($1::text::json)
           AS x(m text, i text, p text, q int, s int, ex float8, ad float8, t float8)
           ON CONFLICT DO NOTHING`,
          [columns(["m", "i", "p", "q", "s", "ex", "ad", "t"], [
            items.map((l) => l.e.machineId),
            items.map((l) => l.item.itemId),
            items.map((l) => l.item.pizzaId),
            items.map((l) => l.item.quantity),
            items.map((l) => l.item.storageSlot),
            items.map((l) => l.item.expiresAt),
            items.map((l) => l.item.addedAt),
            items.map((l) => l.e.ts),
          ])],
        );
      }
    }
  }

  // Last seen: refreshed at most once per cache period per machine by this
  // worker, skipping rows another worker holds (it refreshes them itself),
  // so this never waits.
  const lastTs = new Map<string, number>();
  for (const e of batch) {
    if (cache.due(e.machineId, nowMs)) {
      lastTs.set(e.machineId, Math.max(lastTs.get(e.machineId) ?? 0, e.ts));
    }
  }
  const ids = [...lastTs.keys()].sort();
  if (!ids.length) return [];
  // Only rows that are stale in the database are locked and written: another
  // worker may have refreshed them a moment ago.
  await tx.query(
    `WITH x AS (SELECT * FROM unnest($1::text[], $2::float8[]) AS x(id, t)),
          stale AS (SELECT m.machine_id FROM machines m JOIN x ON x.id = m.machine_id
                     WHERE m.last_seen_at IS NULL
                        OR m.last_seen_at < now() - make_interval(secs => $3::float8)
                     ORDER BY m.machine_id FOR NO KEY UPDATE OF m SKIP LOCKED)
     UPDATE machines m SET last_seen_at = now(),
            last_event_at = GREATEST(m.last_event_at, ${ts("x.t")})
       FROM x WHERE m.machine_id = x.id AND m.machine_id IN (SELECT machine_id FROM stale)`,
    [ids, ids.map((id) => lastTs.get(id)!), cache.periodMs / 1000],
  );
  return ids;
}

/**
 * Records dead letters in `tx`: each once (by its letter id in
 * `processed_events`), as a DEAD_LETTER alert of its machine. Returns the
 * alerts that opened.
 */
export async function recordDeadLetters(
  tx: Queryable,
  letters: readonly DeadLetter[],
  nowMs: number,
): Promise<FleetAlert[]> {
  const opened: FleetAlert[] = [];
  for (const l of byKey([...letters], (x) => k2(x.machineId, x.letterId))) {
    const fresh = await tx.query(
      `INSERT INTO processed_events (machine_id, event_id, kind, event_at)
       VALUES ($1, $2, 'deadletter', now()) ON CONFLICT DO NOTHING RETURNING 1`,
      [l.machineId, l.letterId],
    );
    if (!fresh.length) continue;
    await tx.query("INSERT INTO machines (machine_id) VALUES ($1) ON CONFLICT DO NOTHING", [
      l.machineId,
    ]);
    const alert = await raiseAlert(tx, {
      machineId: l.machineId,
      alertId: l.letterId,
      type: "DEAD_LETTER",
      severity: "WARNING",
      component: "cloud",
      message: `Fleet message on "${l.subject}" was refused: ${l.reason}`.slice(0, 500),
      orderId: null,
      source: "cloud",
      machineAlertId: null,
      atMs: nowMs,
    });
    if (alert) opened.push(alert);
  }
  return opened;
}

/** The machine id a dead letter is filed under: the subject's, or `_invalid`. */
export function deadLetterMachine(subject: string): string {
  const token = subject.split(".")[1] ?? "";
  return /^[A-Za-z0-9_-]{1,64}$/.test(token) ? token : "_invalid";
}
