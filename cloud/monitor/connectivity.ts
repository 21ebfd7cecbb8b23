/**
 * Connectivity: a machine not heard from for `offlineAfterMs` goes offline
 * and raises one OFFLINE alert (dated when it went quiet); when it is heard
 * from again the alert resolves. `machines.offline_alerted_at` marks who is
 * offline, claimed by a conditional update, so two clouds sweeping at once
 * raise one alert.
 */
import type { Random } from "../../random/random.ts";
import type { FleetAlert } from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { fleetAlertOf, raiseCloudAlert, resolveOpenAlert } from "../admin/alerts.ts";
import { at, ms } from "../admin/sql.ts";

/** The alert type of a machine gone quiet. */
export const offlineAlertType = "OFFLINE";

/** What one sweep changed. */
export interface ConnectivityResult {
  wentOffline: string[];
  cameBack: string[];
  /** Alerts opened or resolved, to publish (muted ones left out). */
  alerts: FleetAlert[];
}

/** Marks machines quiet for `offlineAfterMs` offline (with an alert) and the heard-from back. */
export async function sweepConnectivity(
  db: Database,
  options: { nowMs: number; offlineAfterMs: number; random?: Random },
): Promise<ConnectivityResult> {
  const cutoffMs = options.nowMs - options.offlineAfterMs;
  return await db.transaction(async (tx) => {
    const quiet = await tx.query<{ machine_id: string; seen_ms: number }>(
      `UPDATE machines SET offline_alerted_at = ${at("$2")}
        WHERE last_seen_at < ${at("$1")} AND offline_alerted_at IS NULL
        RETURNING machine_id, ${ms("last_seen_at")} AS seen_ms`,
      [cutoffMs, options.nowMs],
    );
    const alerts: FleetAlert[] = [];
    const minutes = Math.round(options.offlineAfterMs / 60_000);
    for (const q of quiet.sort((a, b) => (a.machine_id < b.machine_id ? -1 : 1))) {
      const opened = await raiseCloudAlert(tx, {
        machineId: q.machine_id,
        type: offlineAlertType,
        severity: "WARNING",
        message: `Machine "${q.machine_id}" has not been heard from since ${
          new Date(q.seen_ms).toISOString()
        } (offline after ${minutes} min of silence)`,
        atMs: Math.round(q.seen_ms),
      }, options.random);
      if (opened) alerts.push(opened);
    }
    const back = await tx.query<{ machine_id: string }>(
      `UPDATE machines SET offline_alerted_at = NULL
        WHERE offline_alerted_at IS NOT NULL AND last_seen_at >= ${at("$1")}
        RETURNING machine_id`,
      [cutoffMs],
    );
    for (const b of back.sort((x, y) => (x.machine_id < y.machine_id ? -1 : 1))) {
      const resolved = await resolveOpenAlert(
        tx,
        b.machine_id,
        offlineAlertType,
        "cloud",
        options.nowMs,
      );
      if (resolved && !resolved.muted) alerts.push(fleetAlertOf(resolved));
    }
    return {
      wentOffline: quiet.map((q) => q.machine_id).sort(),
      cameBack: back.map((b) => b.machine_id).sort(),
      alerts,
    };
  });
}
