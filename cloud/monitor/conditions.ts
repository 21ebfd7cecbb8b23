/**
 * Conditions with a duration, read from the temperature series: "storage
 * above 5 °C for 10 min" alerts only when every sample of a sensor stayed
 * above the limit for that long (one sample at or below the limit ends the
 * breach). The breach in progress is kept in `alert_conditions`, with when
 * it alerted, so one breach raises one alert; a new breach while that alert
 * is still open counts on it. The alert stays open after the temperature
 * recovers: food that sat warm needs a person's look.
 */
import type { Random } from "../../random/random.ts";
import type { FleetAlert } from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { raiseCloudAlert, type Severity } from "../admin/alerts.ts";
import { at, ms } from "../admin/sql.ts";

/** A sensor reading above a limit for a duration. */
export interface DurationCondition {
  /** Its key in `alert_conditions`. */
  name: string;
  sensor: "storage" | "oven" | "ambient";
  aboveC: number;
  forMs: number;
  alertType: string;
  severity: Severity;
}

/** Seed 003 §6.7: cold holding at 5 °C or below; ten minutes above is a food-safety alert. */
export const storageAbove5CFor10Min: DurationCondition = {
  name: "storage_above_5c_10min",
  sensor: "storage",
  aboveC: 5,
  forMs: 10 * 60_000,
  alertType: "FOOD_SAFETY",
  severity: "CRITICAL",
};

/** The conditions the monitor checks unless told otherwise. */
export const defaultConditions: readonly DurationCondition[] = [storageAbove5CFor10Min];

/** A breach in progress. */
export interface Breach {
  machineId: string;
  condition: string;
  firstAt: number;
  lastAt: number;
  lastValueC: number;
  /** Whether it lasted long enough to alert. */
  alerting: boolean;
}

/** What one sweep found. */
export interface ConditionsResult {
  breaches: Breach[];
  /** Breaches that alerted in this sweep. */
  alerted: string[];
  /** Alerts opened, to publish. */
  alerts: FleetAlert[];
}

/** Checks `conditions` on every machine's series up to `nowMs`. */
export async function sweepConditions(
  db: Database,
  options: {
    nowMs: number;
    conditions?: readonly DurationCondition[];
    random?: Random;
  },
): Promise<ConditionsResult> {
  const result: ConditionsResult = { breaches: [], alerted: [], alerts: [] };
  for (const c of options.conditions ?? defaultConditions) {
    const one = await sweepCondition(db, c, options.nowMs, options.random);
    result.breaches.push(...one.breaches);
    result.alerted.push(...one.alerted);
    result.alerts.push(...one.alerts);
  }
  return result;
}

async function sweepCondition(
  db: Database,
  c: DurationCondition,
  nowMs: number,
  random: Random | undefined,
): Promise<ConditionsResult> {
  // Look back far enough to see a whole breach of the condition's length;
  // a longer one keeps its start in alert_conditions.
  const lookbackMs = Math.max(2 * c.forMs, 30 * 60_000);
  return await db.transaction(async (tx) => {
    // Per machine: the last sample at or below the limit, and the breach after it.
    const found = await tx.query<{
      machine_id: string;
      first_ms: number;
      last_ms: number;
      last_value: number;
      interrupted: boolean;
    }>(
      `SELECT m.machine_id, ${ms("b.first_at")} AS first_ms, ${ms("b.last_at")} AS last_ms,
              b.last_value, ok.ok_at IS NOT NULL AS interrupted
         FROM machines m
         CROSS JOIN LATERAL (
           SELECT max(o.at) AS ok_at FROM temperatures o
            WHERE o.machine_id = m.machine_id AND o.sensor = $1
              AND o.at > ${at("$2")} AND o.at <= ${at("$3")} AND o.temp_c <= $4) ok
         CROSS JOIN LATERAL (
           SELECT min(t.at) AS first_at, max(t.at) AS last_at,
                  (array_agg(t.temp_c ORDER BY t.at DESC))[1] AS last_value
             FROM temperatures t
            WHERE t.machine_id = m.machine_id AND t.sensor = $1
              AND t.at > ${at("$2")} AND t.at <= ${at("$3")} AND t.temp_c > $4
              AND t.at > coalesce(ok.ok_at, '-infinity'::timestamptz)) b
        WHERE b.first_at IS NOT NULL
        ORDER BY m.machine_id`,
      [c.sensor, nowMs - lookbackMs, nowMs, c.aboveC],
    );
    const ids = found.map((f) => f.machine_id);
    // Breaches that ended: forgotten. A breach that began after a sample within
    // the limit is a new one: the old one's row goes, and with it its "alerted".
    await tx.query(
      `DELETE FROM alert_conditions WHERE condition = $1 AND NOT (machine_id = ANY($2::text[]))`,
      [c.name, ids],
    );
    const rows = JSON.stringify(
      found.map((f) => ({
        m: f.machine_id,
        f: f.first_ms,
        l: f.last_ms,
        v: f.last_value,
        i: f.interrupted,
      })),
    );
    if (found.length) {
      await tx.query(
        `DELETE FROM alert_conditions a
          USING json_to_recordset($2::text::json) AS x(m text, f float8, i bool)
          WHERE a.condition = $1 AND a.machine_id = x.m AND x.i
            AND a.first_breach_at < ${at("x.f")} - interval '1 millisecond'`,
        [c.name, rows],
      );
      await tx.query(
        `INSERT INTO alert_conditions (machine_id, condition, first_breach_at, last_breach_at,
                                       last_value)
         SELECT x.m, $1, ${at("x.f")}, ${at("x.l")}, x.v
           FROM json_to_recordset($2::text::json) AS x(m text, f float8, l float8, v float8)
         ON CONFLICT (machine_id, condition) DO UPDATE SET
           first_breach_at = LEAST(alert_conditions.first_breach_at, EXCLUDED.first_breach_at),
           last_breach_at = GREATEST(alert_conditions.last_breach_at, EXCLUDED.last_breach_at),
           last_value = EXCLUDED.last_value`,
        [c.name, rows],
      );
    }
    const due = await tx.query<{ machine_id: string; first_ms: number; last_value: number }>(
      `UPDATE alert_conditions SET alerted_at = ${at("$3")}
        WHERE condition = $1 AND alerted_at IS NULL
          AND last_breach_at - first_breach_at >= make_interval(secs => $2::float8 / 1000)
        RETURNING machine_id, ${ms("first_breach_at")} AS first_ms, last_value`,
      [c.name, c.forMs, nowMs],
    );
    const alerts: FleetAlert[] = [];
    for (const d of due.sort((a, b) => (a.machine_id < b.machine_id ? -1 : 1))) {
      const minutes = Math.round(c.forMs / 60_000);
      const opened = await raiseCloudAlert(tx, {
        machineId: d.machine_id,
        type: c.alertType,
        severity: c.severity,
        component: c.sensor === "storage" ? "carousel" : c.sensor === "oven" ? "oven" : "cloud",
        message: `${c.sensor} above ${c.aboveC} °C for ${minutes} min since ${
          new Date(d.first_ms).toISOString()
        } (now ${d.last_value} °C)`,
        atMs: Math.round(d.first_ms + c.forMs),
      }, random);
      if (opened) alerts.push(opened);
    }
    const state = await tx.query<{
      machine_id: string;
      first_ms: number;
      last_ms: number;
      last_value: number;
      alerted: boolean;
    }>(
      `SELECT machine_id, ${ms("first_breach_at")} AS first_ms, ${ms("last_breach_at")} AS last_ms,
              last_value, alerted_at IS NOT NULL AS alerted
         FROM alert_conditions WHERE condition = $1 ORDER BY machine_id`,
      [c.name],
    );
    return {
      breaches: state.map((s) => ({
        machineId: s.machine_id,
        condition: c.name,
        firstAt: Math.round(s.first_ms),
        lastAt: Math.round(s.last_ms),
        lastValueC: s.last_value,
        alerting: s.alerted,
      })),
      alerted: due.map((d) => d.machine_id).sort(),
      alerts,
    };
  });
}
