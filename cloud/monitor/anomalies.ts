/**
 * Anomaly detection (seed 003 §6.6) over each machine's last 24 hours:
 *
 * - OVEN_INSTABILITY: the oven's temperature deviates with a standard
 *   deviation above 15 °C. Measured as the deviation from its target while
 *   holding or cooking, so preheating ramps and pizzas with different baking
 *   temperatures do not count as instability (the seed's raw std-dev would).
 * - SLOW_COOKING: completed cooking sessions took 6 min on average or more.
 * - PAYMENT_ISSUES: more than 10 % of payments that reached an outcome failed.
 *
 * Each needs a minimum of samples (one failed payment of two is no pattern).
 * Each maps to one of our alert types, so it shares the one open alert of its
 * type with what the machine itself reports (see {@linkcode anomalyAlertType}).
 */
import type { Random } from "../../random/random.ts";
import type { FleetAlert } from "../../protocol/fleet.ts";
import type { Queryable } from "../db/database.ts";
import { raiseCloudAlert, type Severity } from "../admin/alerts.ts";
import { at } from "../admin/sql.ts";

/** The seed's anomaly types. */
export type AnomalyType = "OVEN_INSTABILITY" | "SLOW_COOKING" | "PAYMENT_ISSUES";

/** The alert type (seed §3.7) each anomaly raises. */
export const anomalyAlertType: Record<AnomalyType, string> = {
  OVEN_INSTABILITY: "TEMPERATURE_ISSUE",
  SLOW_COOKING: "EQUIPMENT_FAILURE",
  PAYMENT_ISSUES: "PAYMENT_ISSUE",
};

const severityOf: Record<AnomalyType, Severity> = {
  OVEN_INSTABILITY: "WARNING",
  SLOW_COOKING: "WARNING",
  PAYMENT_ISSUES: "CRITICAL",
};

/** Limits of anomaly detection. */
export interface AnomalyThresholds {
  /** How far back to look (default 24 h). */
  windowMs: number;
  ovenStdDevC: number;
  minOvenSamples: number;
  averageCookTimeMs: number;
  minCookSessions: number;
  /** A fraction: 0.1 is 10 %. */
  paymentFailureRate: number;
  minPayments: number;
}

/** The seed's limits. */
export const defaultThresholds: AnomalyThresholds = {
  windowMs: 24 * 60 * 60_000,
  ovenStdDevC: 15,
  minOvenSamples: 10,
  averageCookTimeMs: 6 * 60_000,
  minCookSessions: 3,
  paymentFailureRate: 0.1,
  minPayments: 10,
};

/** One anomaly found. */
export interface Anomaly {
  machineId: string;
  type: AnomalyType;
  alertType: string;
  severity: Severity;
  message: string;
  /** The measured value (°C, ms, or a fraction). */
  value: number;
  samples: number;
}

/** The anomalies of every machine (or of `machineId`) in the window ending at `nowMs`. */
export async function detectAnomalies(
  db: Queryable,
  options: { nowMs: number; machineId?: string | undefined; thresholds?: AnomalyThresholds },
): Promise<Anomaly[]> {
  const t = options.thresholds ?? defaultThresholds;
  const only = options.machineId === undefined ? "" : "WHERE m.machine_id = $3";
  const params: unknown[] = [options.nowMs - t.windowMs, options.nowMs];
  if (options.machineId !== undefined) params.push(options.machineId);
  const rows = await db.query<{
    machine_id: string;
    oven_n: number;
    oven_sd: number | null;
    cook_n: number;
    cook_avg: number | null;
    pay_n: number;
    pay_failed: number;
  }>(
    `SELECT m.machine_id, o.n AS oven_n, o.sd AS oven_sd, c.n AS cook_n, c.avg AS cook_avg,
            p.n AS pay_n, p.failed AS pay_failed
       FROM machines m
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n, stddev_pop(t.temp_c - t.target_c)::float8 AS sd
           FROM temperatures t
          WHERE t.machine_id = m.machine_id AND t.sensor = 'oven'
            AND t.at > ${at("$1")} AND t.at <= ${at("$2")}
            AND t.target_c IS NOT NULL AND t.state IN ('holding', 'cooking')) o
       CROSS JOIN LATERAL (
         SELECT count(*)::int AS n, avg(s.cook_time_ms)::float8 AS avg
           FROM cooking_sessions s
          WHERE s.machine_id = m.machine_id AND s.started_at > ${at("$1")}
            AND s.started_at <= ${at("$2")} AND s.status = 'COMPLETE'
            AND s.cook_time_ms IS NOT NULL) c
       CROSS JOIN LATERAL (
         SELECT count(*) FILTER (WHERE y.status <> 'PENDING')::int AS n,
                count(*) FILTER (WHERE y.status = 'FAILED')::int AS failed
           FROM payments y
          WHERE y.machine_id = m.machine_id AND y.updated_at > ${at("$1")}
            AND y.updated_at <= ${at("$2")}) p
       ${only}
      ORDER BY m.machine_id`,
    params,
  );
  const found: Anomaly[] = [];
  const add = (machineId: string, type: AnomalyType, message: string, value: number, n: number) =>
    found.push({
      machineId,
      type,
      alertType: anomalyAlertType[type],
      severity: severityOf[type],
      message,
      value,
      samples: n,
    });
  for (const r of rows) {
    if (r.oven_n >= t.minOvenSamples && r.oven_sd !== null && r.oven_sd > t.ovenStdDevC) {
      add(
        r.machine_id,
        "OVEN_INSTABILITY",
        `Oven temperature fluctuating abnormally: std-dev ${
          r.oven_sd.toFixed(1)
        } °C from target over ${r.oven_n} samples (limit ${t.ovenStdDevC} °C)`,
        r.oven_sd,
        r.oven_n,
      );
    }
    if (
      r.cook_n >= t.minCookSessions && r.cook_avg !== null && r.cook_avg > t.averageCookTimeMs
    ) {
      add(
        r.machine_id,
        "SLOW_COOKING",
        `Cooking times longer than normal: ${(r.cook_avg / 60_000).toFixed(1)} min on average ` +
          `over ${r.cook_n} pizzas (limit ${(t.averageCookTimeMs / 60_000).toFixed(1)} min)`,
        r.cook_avg,
        r.cook_n,
      );
    }
    const rate = r.pay_n ? r.pay_failed / r.pay_n : 0;
    if (r.pay_n >= t.minPayments && rate > t.paymentFailureRate) {
      add(
        r.machine_id,
        "PAYMENT_ISSUES",
        `High payment failure rate: ${(rate * 100).toFixed(1)}% ` +
          `(${r.pay_failed} of ${r.pay_n} payments)`,
        rate,
        r.pay_n,
      );
    }
  }
  return found;
}

/** Raises an alert per anomaly; returns those that opened (to publish). */
export async function raiseAnomalyAlerts(
  db: Queryable,
  anomalies: readonly Anomaly[],
  nowMs: number,
  random?: Random,
): Promise<FleetAlert[]> {
  const opened: FleetAlert[] = [];
  for (const a of anomalies) {
    const alert = await raiseCloudAlert(db, {
      machineId: a.machineId,
      type: a.alertType,
      severity: a.severity,
      component: a.type === "PAYMENT_ISSUES" ? "payment" : "oven",
      message: a.message,
      atMs: nowMs,
    }, random);
    if (alert) opened.push(alert);
  }
  return opened;
}
