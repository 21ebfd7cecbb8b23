/**
 * Writes a batch of fleet events in the caller's transaction, idempotently,
 * with set-based statements (a JSON recordset per kind): a batch costs a dozen statements
 * whatever its size, prepared once per connection and sent together, so a
 * batch takes two or three round trips to Postgres, not one per statement.
 * A redelivered event writes nothing twice:
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
 * Concurrency between workers: statements go out in one fixed order of
 * tables, rows are written in key order, and the machine rows (the only hot
 * rows) are locked last, in one sorted statement;
 * the `last_seen_at` refresh skips rows another worker holds, since that
 * worker refreshes them anyway.
 */
import type { Queryable, Row } from "../db/database.ts";
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
 * Rows as one JSON parameter for `json_to_recordset($1::text::json)`:
 * serialised natively, it costs the client a third of what array parameters do.
 */
function records<T>(rows: readonly T[], row: (r: T) => Record<string, unknown>): string {
  return JSON.stringify(rows.map(row));
}

/** Ingestion's statements are few and constant: each is prepared once per connection. */
const prepared = { prepare: true } as const;

/**
 * Sends `sql` at once (in call order, so Postgres runs a batch's statements
 * in the order they were written here) and resolves with its rows.
 */
function run<T = Row>(tx: Queryable, sql: string, params: unknown[]): Promise<T[]> {
  return tx.query<T>(sql, params, prepared);
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

/** How many of `count` rows `sql` (an INSERT … ON CONFLICT DO NOTHING) found already there. */
function alreadyThere(tx: Queryable, count: number, sql: string, params: unknown[]) {
  return run<{ n: number }>(
    tx,
    `WITH ins AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM ins`,
    params,
  ).then((rows) => count - (rows[0]?.n ?? 0));
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
  const by = groupByKind(batch);
  // Nothing below waits for an answer until the alert gate's: one round trip.
  const sent = Promise.all([
    unknown.length
      ? run(
        tx,
        // Probed first: most are known, and a probe costs less than a refused insert.
        `INSERT INTO machines (machine_id)
         SELECT id FROM unnest($1::text[]) AS id
          WHERE NOT EXISTS (SELECT 1 FROM machines m WHERE m.machine_id = id)
          ORDER BY 1
         ON CONFLICT DO NOTHING`,
        [unknown],
      ).then(() => 0)
      : 0,
    ...appendSeries(tx, by),
    upsertOrders(tx, by.order),
    upsertPayments(tx, by.payment),
    upsertCooking(tx, by.cooking),
  ]);
  const fresh = admitAlerts(tx, by.alert);
  const [written, admitted] = await Promise.all([sent, fresh]);
  for (const n of written) duplicates += n;
  const alerts = await applyAlerts(tx, by.alert, admitted);
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

/** Appends records, sent at once; each resolves with how many were already there. */
function appendSeries(tx: Queryable, by: ByKind): Promise<number>[] {
  const sent: Promise<number>[] = [];
  if (by.temperature.length) {
    const r = byKey(by.temperature, (e) => k2(e.machineId, `${e.sensor}\u0000${e.ts}`));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO temperatures (machine_id, at, sensor, temp_c, target_c, heater_pct, state)
       SELECT m, ${ts("t")}, s, c, g, h, st
         FROM json_to_recordset($1::text::json)
           AS x(m text, t float8, s text, c float8, g float8, h float8, st text)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({
        m: e.machineId,
        t: e.ts,
        s: e.sensor,
        c: e.tempC,
        g: e.targetC,
        h: e.heaterPct,
        st: e.state,
      }))],
    ));
  }
  if (by.metric.length) {
    const r = byKey(by.metric, (e) => k2(e.machineId, `${e.name}\u0000${e.ts}`));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO metrics (machine_id, at, name, value, labels)
       SELECT m, ${ts("t")}, n, v, l
         FROM json_to_recordset($1::text::json)
           AS x(m text, t float8, n text, v float8, l jsonb)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({ m: e.machineId, t: e.ts, n: e.name, v: e.value, l: e.labels }))],
    ));
  }
  if (by.sale.length) {
    const r = byKey(by.sale, (e) => k2(e.machineId, e.id));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO sales (machine_id, sale_id, item_id, price_cents, sold_at, source, order_id)
       SELECT m, i, it, p, ${ts("t")}, s, o
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, it text, p int, t float8, s text, o text)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({
        m: e.machineId,
        i: e.id,
        it: e.itemId,
        p: e.priceCents,
        t: e.soldAt,
        s: e.source,
        o: e.orderId ?? null,
      }))],
    ));
  }
  if (by.fault.length) {
    const r = byKey(by.fault, (e) => k2(e.machineId, e.id));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO faults (machine_id, event_id, component, code, message, order_id, temp_c, at)
       SELECT m, i, c, cd, msg, o, tc, ${ts("t")}
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, c text, cd text, msg text, o text, tc float8, t float8)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({
        m: e.machineId,
        i: e.id,
        c: e.component,
        cd: e.code,
        msg: e.message,
        o: e.activeOrderId,
        tc: e.temperatureC,
        t: e.ts,
      }))],
    ));
  }
  if (by.discard.length) {
    const r = byKey(by.discard, (e) => k2(e.machineId, e.id));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO food_safety_log (machine_id, event_id, item_id, pizza_id, storage_slot, reason,
                                    above_limit_ms, storage_temp_c, at)
       SELECT m, i, it, p, sl, rs, al, st, ${ts("t")}
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, it text, p text, sl int, rs text, al float8, st float8, t float8)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({
        m: e.machineId,
        i: e.id,
        it: e.itemId,
        p: e.pizzaId,
        sl: e.storageSlot,
        rs: e.reason,
        al: e.aboveLimitMs,
        st: e.storageTempC,
        t: e.ts,
      }))],
    ));
  }
  if (by.machine.length) {
    const r = byKey(by.machine, (e) => k2(e.machineId, e.id));
    sent.push(alreadyThere(
      tx,
      r.length,
      `INSERT INTO machine_status_log (machine_id, event_id, at, status, reason, cash_only,
                                       maintenance)
       SELECT m, i, ${ts("t")}, s, r, c, mt
         FROM json_to_recordset($1::text::json)
           AS x(m text, i text, t float8, s text, r text, c bool, mt bool)
       ON CONFLICT DO NOTHING`,
      [records(r, (e) => ({
        m: e.machineId,
        i: e.id,
        t: e.ts,
        s: e.status,
        r: e.reason,
        c: e.cashOnly,
        mt: e.maintenance,
      }))],
    ));
  }
  return sent;
}

/** Upserts orders (sent at once); resolves with 0 (state: a replay is not counted). */
function upsertOrders(tx: Queryable, events: FleetEventOf<"order">[]): Promise<number> | 0 {
  if (!events.length) return 0;
  const rank = (s: string) => orderRanks.indexOf(s);
  const r = latestBy(
    events,
    (e) => k2(e.machineId, e.order.orderId),
    (e) => [e.ts, rank(e.order.status)],
  );
  return run(
    tx,
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
    [records(r, (e) => ({
      m: e.machineId,
      o: e.order.orderId,
      p: e.order.pizzaId,
      s: e.order.status,
      em: e.order.customerEmail ?? null,
      amt: e.order.totalAmountCents,
      pm: e.order.paymentMethod ?? null,
      ptx: e.order.paymentTransactionId ?? null,
      pl: e.order.placedAt,
      rd: e.order.readyAt,
      ds: e.order.dispensedAt,
      rs: e.order.reason ?? null,
      t: e.ts,
      ev: e.id,
    }))],
  ).then(() => 0);
}

/** Upserts payments (sent at once); resolves with 0. */
function upsertPayments(tx: Queryable, events: FleetEventOf<"payment">[]): Promise<number> | 0 {
  if (!events.length) return 0;
  const r = latestBy(
    events,
    (e) => k2(e.machineId, e.payment.paymentId),
    (e) => [e.ts, paymentRanks.indexOf(e.payment.status)],
  );
  return run(
    tx,
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
    [records(r, (e) => ({
      m: e.machineId,
      p: e.payment.paymentId,
      o: e.payment.orderId,
      amt: e.payment.amountCents,
      me: e.payment.method,
      s: e.payment.status,
      tx: e.payment.transactionId,
      l4: e.payment.last4,
      ins: e.payment.insertedCents,
      chg: e.payment.changeCents,
      gw: e.payment.gatewayResponse,
      pr: e.payment.processedAt,
      t: e.ts,
      ev: e.id,
    }))],
  ).then(() => 0);
}

/** Upserts cooking sessions (sent at once); resolves with 0. */
function upsertCooking(tx: Queryable, events: FleetEventOf<"cooking">[]): Promise<number> | 0 {
  if (!events.length) return 0;
  const r = latestBy(events, (e) => k2(e.machineId, e.session.sessionId), (e) => [e.ts]);
  return run(
    tx,
    `INSERT INTO cooking_sessions (machine_id, session_id, order_id, start_temp_c, target_temp_c,
                                   final_temp_c, status, started_at, completed_at, cook_time_ms)
     SELECT m, s, o, st, tg, fi, stt, ${ts("sa")}, ${ts("ca")}, (ca - sa)::int
       FROM json_to_recordset($1::text::json)
           AS x(m text, s text, o text, st float8, tg float8, fi float8, stt text, sa float8,
                ca float8)
    ON CONFLICT (machine_id, session_id) DO UPDATE SET
       final_temp_c = EXCLUDED.final_temp_c, status = EXCLUDED.status,
       completed_at = EXCLUDED.completed_at, cook_time_ms = EXCLUDED.cook_time_ms`,
    [records(r, (e) => ({
      m: e.machineId,
      s: e.session.sessionId,
      o: e.session.orderId,
      st: e.session.startTemperatureC,
      tg: e.session.targetTemperatureC,
      fi: e.session.currentTemperatureC,
      stt: e.session.status,
      sa: e.session.startedAt,
      ca: e.session.completedAt,
    }))],
  ).then(() => 0);
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
  const rows = await run<{
    alert_id: string;
    count: number;
    muted: boolean;
    first_ms: number;
    last_ms: number;
  }>(
    tx,
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

/**
 * Admits the alert events never seen before (sent at once): an alert repeat
 * raises a counter, so only a first delivery may. Resolves with their keys.
 */
function admitAlerts(tx: Queryable, events: FleetEventOf<"alert">[]): Promise<Set<string>> {
  if (!events.length) return Promise.resolve(new Set());
  const gate = byKey(events, (e) => k2(e.machineId, e.id));
  return run<{ machine_id: string; event_id: string }>(
    tx,
    `INSERT INTO processed_events (machine_id, event_id, kind, event_at)
     SELECT m, e, 'alert', ${ts("t")}
       FROM json_to_recordset($1::text::json)
           AS x(m text, e text, t float8)
     ON CONFLICT DO NOTHING
     RETURNING machine_id, event_id`,
    [records(gate, (e) => ({ m: e.machineId, e: e.id, t: e.ts }))],
  ).then((rows) => new Set(rows.map((r) => k2(r.machine_id, r.event_id))));
}

/** Applies the admitted (`fresh`) alert events, sent at once. */
async function applyAlerts(
  tx: Queryable,
  events: FleetEventOf<"alert">[],
  fresh: Set<string>,
): Promise<{ opened: FleetAlert[]; duplicates: number }> {
  // Per event, in key order and, within a key, in batch order: raise and
  // resolve of one alert must apply in the order they happened.
  const sorted = events
    .map((e, i) => ({ e, i }))
    .filter(({ e }) => fresh.has(k2(e.machineId, e.id)))
    .sort((x, y) => {
      const a = k2(x.e.machineId, x.e.alert.type), b = k2(y.e.machineId, y.e.alert.type);
      return a < b ? -1 : a > b ? 1 : x.i - y.i;
    });
  const raised = await Promise.all(sorted.map(({ e }) =>
    e.alert.resolved
      ? run(
        tx,
        `UPDATE alerts SET resolved = true, resolved_at = ${ts("$3::float8")},
                resolved_by = 'machine'
          WHERE machine_id = $1 AND alert_type = $2 AND NOT resolved`,
        [e.machineId, e.alert.type, e.alert.resolvedAt ?? e.ts],
      ).then(() => null)
      : raiseAlert(tx, {
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
      })
  ));
  return {
    opened: raised.filter((a): a is FleetAlert => a !== null),
    duplicates: events.length - fresh.size,
  };
}

/** Updates machine rows, sent at once; returns the machines whose last seen is now fresh. */
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
  const sent: Promise<unknown>[] = [];

  // Hot rows: locked in one sorted statement, after every other write.
  // Stock levels have their own guard per row: only snapshots need the machine row.
  const touched = [...new Set([...status, ...beats, ...snapshots].map((e) => e.machineId))]
    .sort();
  if (touched.length) {
    sent.push(run(
      tx,
      `SELECT machine_id FROM machines WHERE machine_id = ANY($1::text[])
        ORDER BY machine_id FOR NO KEY UPDATE`,
      [touched],
    ));
  }
  if (status.length) {
    sent.push(run(
      tx,
      `UPDATE machines m SET status = x.s, status_reason = x.r, cash_only = x.c,
              maintenance = x.mt, status_at = ${ts("x.t")}, updated_at = now()
         FROM json_to_recordset($1::text::json)
           AS x(id text, s text, r text, c bool, mt bool, t float8)
        WHERE m.machine_id = ANY($2::text[]) AND m.machine_id = x.id
          AND (m.status_at IS NULL OR m.status_at <= ${ts("x.t")})`,
      [
        records(status, (e) => ({
          id: e.machineId,
          s: e.status,
          r: e.reason,
          c: e.cashOnly,
          mt: e.maintenance,
          t: e.ts,
        })),
        status.map((e) => e.machineId),
      ],
    ));
  }
  if (beats.length) {
    sent.push(run(
      tx,
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
        records(beats, (e) => ({
          id: e.machineId,
          cv: e.configVersion,
          sv: e.softwareVersion,
          od: e.outboxDepth,
          t: e.ts,
        })),
        beats.map((e) => e.machineId),
      ],
    ));
  }
  const levels = byKey(
    stock.flatMap((e) =>
      Object.entries(e.levels).map(([itemId, quantity]) => ({ e, itemId, quantity }))
    ),
    (l) => k2(l.e.machineId, l.itemId),
  );
  if (levels.length) {
    sent.push(run(
      tx,
      `INSERT INTO inventory_levels (machine_id, item_id, quantity, updated_at)
       SELECT m, i, q, ${ts("t")}
         FROM json_to_recordset($1::text::json)
         AS x(m text, i text, q int, t float8)
      ON CONFLICT (machine_id, item_id) DO UPDATE SET
         quantity = EXCLUDED.quantity, updated_at = EXCLUDED.updated_at
       WHERE inventory_levels.updated_at <= EXCLUDED.updated_at`,
      [records(levels, (l) => ({ m: l.e.machineId, i: l.itemId, q: l.quantity, t: l.e.ts }))],
    ));
  }
  const newer = snapshots.length
    ? run<{ machine_id: string }>(
      tx,
      `UPDATE machines m SET inventory_at = ${ts("x.t")}
         FROM unnest($1::text[], $2::float8[]) AS x(id, t)
        WHERE m.machine_id = x.id AND (m.inventory_at IS NULL OR m.inventory_at <= ${ts("x.t")})
       RETURNING m.machine_id`,
      [snapshots.map((e) => e.machineId), snapshots.map((e) => e.ts)],
    )
    : Promise.resolve([]);

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
  if (ids.length) {
    // Only rows that are stale in the database are locked and written: another
    // worker may have refreshed them a moment ago.
    sent.push(run(
      tx,
      `WITH x AS (SELECT * FROM unnest($1::text[], $2::float8[]) AS x(id, t)),
            stale AS (SELECT m.machine_id FROM machines m JOIN x ON x.id = m.machine_id
                       WHERE m.last_seen_at IS NULL
                          OR m.last_seen_at < now() - make_interval(secs => $3::float8)
                       ORDER BY m.machine_id FOR NO KEY UPDATE OF m SKIP LOCKED)
       UPDATE machines m SET last_seen_at = now(),
              last_event_at = GREATEST(m.last_event_at, ${ts("x.t")})
         FROM x WHERE m.machine_id = x.id AND m.machine_id IN (SELECT machine_id FROM stale)`,
      [ids, ids.map((id) => lastTs.get(id)!), cache.periodMs / 1000],
    ));
  }
  const [apply] = await Promise.all([newer, ...sent]);
  await replaceSnapshots(tx, snapshots, new Set(apply.map((r) => r.machine_id)));
  return ids;
}

/** Replaces the slot-level stock of the machines whose snapshot is newer (`apply`). */
async function replaceSnapshots(
  tx: Queryable,
  snapshots: FleetEventOf<"inventory">[],
  apply: Set<string>,
): Promise<void> {
  const chosen = snapshots.filter((e) => apply.has(e.machineId));
  if (!chosen.length) return;
  const items = byKey(
    chosen.flatMap((e) => (e.items ?? []).map((item) => ({ e, item }))),
    (l) => k2(l.e.machineId, l.item.itemId),
  );
  await Promise.all([
    run(tx, "DELETE FROM inventory_items WHERE machine_id = ANY($1::text[])", [
      chosen.map((e) => e.machineId),
    ]),
    items.length
      ? run(
        tx,
        `INSERT INTO inventory_items (machine_id, item_id, pizza_id, quantity, storage_slot,
                                      expires_at, added_at, updated_at)
         SELECT m, i, p, q, s, ${ts("ex")}, ${ts("ad")}, ${ts("t")}
           FROM json_to_recordset($1::text::json)
           AS x(m text, i text, p text, q int, s int, ex float8, ad float8, t float8)
         ON CONFLICT DO NOTHING`,
        [records(items, (l) => ({
          m: l.e.machineId,
          i: l.item.itemId,
          p: l.item.pizzaId,
          q: l.item.quantity,
          s: l.item.storageSlot,
          ex: l.item.expiresAt,
          ad: l.item.addedAt,
          t: l.e.ts,
        }))],
      )
      : null,
  ]);
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
    const fresh = await run(
      tx,
      `INSERT INTO processed_events (machine_id, event_id, kind, event_at)
       VALUES ($1, $2, 'deadletter', now()) ON CONFLICT DO NOTHING RETURNING 1`,
      [l.machineId, l.letterId],
    );
    if (!fresh.length) continue;
    await run(tx, "INSERT INTO machines (machine_id) VALUES ($1) ON CONFLICT DO NOTHING", [
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
