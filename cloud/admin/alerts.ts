/**
 * Alerts as operators see them, and the cloud's own alerts. One open alert per
 * machine and type is the schema's promise (a partial unique index); raising
 * goes through ingestion's `raiseAlert` (INSERT … ON CONFLICT), so a repeat
 * raises the count and last seen of the open alert, also under concurrency,
 * and a machine in maintenance mode gets its alerts muted (stored, not
 * published). Alerts that open or resolve go to `fleet.alerts.<severity>`.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { createCryptoRandom, type Random } from "../../random/random.ts";
import type { Logger } from "../../log/log.ts";
import { encodeFleetAlert, type FleetAlert, type FleetNames } from "../../protocol/fleet.ts";
import type { Queryable } from "../db/database.ts";
import { raiseAlert } from "../ingest/store.ts";
import type { AlertView } from "./views.ts";

export type { AlertView } from "./views.ts";

/** Severities, weakest first. */
export type Severity = FleetAlert["severity"];

/** A filter of {@linkcode listAlerts}. */
export interface AlertFilter {
  machineId?: string | undefined;
  /** Open only (false), resolved only (true), or both (undefined). */
  resolved?: boolean | undefined;
  severity?: Severity | undefined;
  type?: string | undefined;
  /** At most this many, latest first (default 100). */
  limit?: number | undefined;
}

/** The columns of an alert view (`a` is the alerts table). */
export const alertColumns = `a.alert_id, a.machine_id, a.alert_type, a.severity, a.component,
  a.message, a.source, a.count, a.resolved, a.resolved_by, a.muted,
  (extract(epoch FROM a.first_seen_at) * 1000)::float8 AS first_ms,
  (extract(epoch FROM a.last_seen_at) * 1000)::float8 AS last_ms,
  (extract(epoch FROM a.resolved_at) * 1000)::float8 AS resolved_ms`;

/** A row of {@linkcode alertColumns}. */
export interface AlertRow {
  alert_id: string;
  machine_id: string;
  alert_type: string;
  severity: Severity;
  component: string | null;
  message: string;
  source: string;
  count: number;
  resolved: boolean;
  resolved_by: string | null;
  muted: boolean;
  first_ms: number;
  last_ms: number;
  resolved_ms: number | null;
}

/** An alert row as a view. */
export function alertView(r: AlertRow): AlertView {
  return {
    alertId: r.alert_id,
    machineId: r.machine_id,
    type: r.alert_type,
    severity: r.severity,
    component: r.component,
    message: r.message,
    source: r.source,
    count: r.count,
    firstSeenAt: Math.round(r.first_ms),
    lastSeenAt: Math.round(r.last_ms),
    resolved: r.resolved,
    resolvedAt: r.resolved_ms === null ? null : Math.round(r.resolved_ms),
    resolvedBy: r.resolved_by,
    muted: r.muted,
  };
}

/** An alert view as supervisors get it on NATS. */
export function fleetAlertOf(a: AlertView): FleetAlert {
  return {
    alertId: a.alertId,
    machineId: a.machineId,
    type: a.type,
    severity: a.severity,
    component: a.component,
    message: a.message,
    count: a.count,
    firstSeenAt: a.firstSeenAt,
    lastSeenAt: a.lastSeenAt,
    resolved: a.resolved,
  };
}

/** Alerts matching `filter`, latest first. */
export async function listAlerts(db: Queryable, filter: AlertFilter = {}): Promise<AlertView[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `$${params.length}`));
  };
  if (filter.machineId !== undefined) add("a.machine_id = ?", filter.machineId);
  if (filter.resolved !== undefined) add("a.resolved = ?", filter.resolved);
  if (filter.severity !== undefined) add("a.severity = ?", filter.severity);
  if (filter.type !== undefined) add("a.alert_type = ?", filter.type);
  params.push(filter.limit ?? 100);
  const rows = await db.query<AlertRow>(
    `SELECT ${alertColumns} FROM alerts a
      ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY a.last_seen_at DESC, a.alert_id LIMIT $${params.length}`,
    params,
  );
  return rows.map(alertView);
}

/** What {@linkcode resolveAlertById} found. */
export type ResolveOutcome =
  | { ok: true; alert: AlertView }
  | { ok: false; reason: "not_found" | "already_resolved"; alert: AlertView | null };

/** Resolves the open alert `alertId` in the name of `by`. */
export async function resolveAlertById(
  db: Queryable,
  alertId: string,
  by: string,
  nowMs: number,
): Promise<ResolveOutcome> {
  const rows = await db.query<AlertRow>(
    `UPDATE alerts a SET resolved = true, resolved_at = to_timestamp($3 / 1000.0), resolved_by = $2
      WHERE a.alert_id = $1 AND NOT a.resolved
      RETURNING ${alertColumns}`,
    [alertId, by, nowMs],
  );
  if (rows[0]) return { ok: true, alert: alertView(rows[0]) };
  const found = await db.query<AlertRow>(
    `SELECT ${alertColumns} FROM alerts a WHERE a.alert_id = $1 LIMIT 1`,
    [alertId],
  );
  return found[0]
    ? { ok: false, reason: "already_resolved", alert: alertView(found[0]) }
    : { ok: false, reason: "not_found", alert: null };
}

/** Resolves the open alert of `type` on `machineId` (a condition cleared); null when none was open. */
export async function resolveOpenAlert(
  db: Queryable,
  machineId: string,
  type: string,
  by: string,
  nowMs: number,
): Promise<AlertView | null> {
  const rows = await db.query<AlertRow>(
    `UPDATE alerts a SET resolved = true, resolved_at = to_timestamp($4 / 1000.0), resolved_by = $3
      WHERE a.machine_id = $1 AND a.alert_type = $2 AND NOT a.resolved
      RETURNING ${alertColumns}`,
    [machineId, type, by, nowMs],
  );
  return rows[0] ? alertView(rows[0]) : null;
}

/** An alert the cloud raises. */
export interface CloudAlert {
  machineId: string;
  type: string;
  severity: Severity;
  message: string;
  /** The component it is about, when one (`cloud` for connectivity). */
  component?: string | null;
  /** When the condition began, epoch ms. */
  atMs: number;
}

/**
 * Raises `alert`: opens it, or counts a repeat on the open alert of its
 * machine and type. Returns the alert to publish when it opened (and is not
 * muted), else null.
 */
export function raiseCloudAlert(
  db: Queryable,
  alert: CloudAlert,
  random: Random = createCryptoRandom(),
): Promise<FleetAlert | null> {
  return raiseAlert(db, {
    machineId: alert.machineId,
    alertId: `c-${random.uuid()}`,
    type: alert.type,
    severity: alert.severity,
    component: alert.component ?? "cloud",
    message: alert.message.slice(0, 500),
    orderId: null,
    source: "cloud",
    machineAlertId: null,
    atMs: alert.atMs,
  });
}

/** Publishes `alerts` on `fleet.alerts.<severity>`; a failed publish is logged, never thrown. */
export function publishAlerts(
  nc: NatsConnection | null,
  names: FleetNames,
  alerts: readonly FleetAlert[],
  log: Logger,
): void {
  if (!nc) return;
  for (const a of alerts) {
    try {
      nc.publish(names.alerts(a.severity), encodeFleetAlert(a));
    } catch (err) {
      log.log("warn", "alert not published", { alertId: a.alertId, err: String(err) });
    }
  }
}
