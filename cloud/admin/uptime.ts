/**
 * Uptime: the share of a time window in which the cloud could confirm a
 * machine was serving. A machine serves while its own status reports say
 * OPERATIONAL or DEGRADED (cash only still sells; before its first report a
 * machine we know of is taken as OPERATIONAL: `/sync` machines never report
 * a status), and the cloud confirms it only while it hears from the machine:
 * the spans of its OFFLINE alerts (from going quiet to coming back) count as
 * down, as an SLA would count them.
 */
import type { Queryable } from "../db/database.ts";
import { at, ms } from "./sql.ts";

/** Statuses in which a machine serves customers. */
export const servingStatuses: ReadonlySet<string> = new Set(["OPERATIONAL", "DEGRADED"]);

/** What {@linkcode uptimePercent} needs of one machine. */
export interface UptimeFacts {
  startMs: number;
  endMs: number;
  /** Since when the machine is known (its row's creation); earlier time is not counted. */
  knownFromMs: number;
  /** Its status at `startMs` (last report before), or null before its first report. */
  initialStatus: string | null;
  /** Its reports within the window, in time order. */
  changes: readonly { atMs: number; status: string }[];
  /** Spans it was not heard from. */
  offline: readonly { fromMs: number; toMs: number }[];
}

/** Percent of the window (0-100, one decimal) the machine served, or null for an empty window. */
export function uptimePercent(f: UptimeFacts): number | null {
  const from = Math.max(f.startMs, f.knownFromMs);
  const to = f.endMs;
  if (to <= from) return null;
  const up: [number, number][] = [];
  let status = f.initialStatus ?? "OPERATIONAL";
  let since = from;
  for (const c of f.changes) {
    const t = Math.min(Math.max(c.atMs, from), to);
    if (servingStatuses.has(status) && t > since) up.push([since, t]);
    since = Math.max(since, t);
    status = c.status;
  }
  if (servingStatuses.has(status) && to > since) up.push([since, to]);
  let upMs = 0;
  for (const [a, b] of up) {
    let span = b - a;
    // Offline spans may overlap each other: subtract their union within [a, b].
    const cuts = f.offline
      .map((o) => [Math.max(a, o.fromMs), Math.min(b, o.toMs)] as const)
      .filter(([x, y]) => y > x)
      .sort((x, y) => x[0] - y[0]);
    let reach = a;
    for (const [x, y] of cuts) {
      const s = Math.max(x, reach);
      if (y > s) span -= y - s;
      reach = Math.max(reach, y);
    }
    upMs += span;
  }
  return Math.round((upMs / (to - from)) * 1000) / 10;
}

/**
 * Uptime percent per machine over [startMs, endMs) (`endMs` capped at
 * `nowMs`), for `machineIds` or every machine when null. A machine is known
 * from its row's creation or its first report, sale or order, whichever is
 * first (a machine may have sold offline before it first synced).
 */
export async function uptimeByMachine(
  db: Queryable,
  machineIds: readonly string[] | null,
  startMs: number,
  endMs: number,
  nowMs: number,
): Promise<Record<string, number | null>> {
  const end = Math.min(endMs, nowMs);
  const ids = machineIds ? [...machineIds] : null;
  const machines = await db.query<{ machine_id: string; known_ms: number; before: string | null }>(
    `SELECT m.machine_id, b.status AS before,
            ${ms("LEAST(m.created_at, fl.at, fs.sold_at, fo.placed_at)")} AS known_ms
       FROM machines m
       LEFT JOIN LATERAL (
         SELECT l.status FROM machine_status_log l
          WHERE l.machine_id = m.machine_id AND l.at < ${at("$1")}
          ORDER BY l.at DESC LIMIT 1) b ON true
       LEFT JOIN LATERAL (
         SELECT l.at FROM machine_status_log l WHERE l.machine_id = m.machine_id
          ORDER BY l.at LIMIT 1) fl ON true
       LEFT JOIN LATERAL (
         SELECT s.sold_at FROM sales s WHERE s.machine_id = m.machine_id
          ORDER BY s.sold_at LIMIT 1) fs ON true
       LEFT JOIN LATERAL (
         SELECT o.placed_at FROM orders o WHERE o.machine_id = m.machine_id
          ORDER BY o.placed_at LIMIT 1) fo ON true
      ${ids ? "WHERE m.machine_id = ANY($2::text[])" : ""}`,
    ids ? [startMs, ids] : [startMs],
  );
  const params = ids ? [startMs, end, ids] : [startMs, end];
  const idFilter = ids ? "AND machine_id = ANY($3::text[])" : "";
  const changes = await db.query<{ machine_id: string; at_ms: number; status: string }>(
    `SELECT machine_id, ${ms("at")} AS at_ms, status FROM machine_status_log
      WHERE at >= ${at("$1")} AND at < ${at("$2")} ${idFilter}
      ORDER BY machine_id, at, event_id`,
    params,
  );
  const offline = await db.query<{ machine_id: string; from_ms: number; to_ms: number | null }>(
    `SELECT machine_id, ${ms("first_seen_at")} AS from_ms, ${ms("resolved_at")} AS to_ms
       FROM alerts
      WHERE alert_type = 'OFFLINE' AND first_seen_at < ${at("$2")}
        AND (resolved_at IS NULL OR resolved_at > ${at("$1")}) ${idFilter}`,
    params,
  );
  const changesOf = groupBy(changes, (c) => c.machine_id);
  const offlineOf = groupBy(offline, (o) => o.machine_id);
  const result: Record<string, number | null> = {};
  for (const m of machines) {
    result[m.machine_id] = uptimePercent({
      startMs,
      endMs: end,
      knownFromMs: m.known_ms,
      initialStatus: m.before,
      changes: (changesOf.get(m.machine_id) ?? []).map((c) => ({
        atMs: c.at_ms,
        status: c.status,
      })),
      offline: (offlineOf.get(m.machine_id) ?? []).map((o) => ({
        fromMs: o.from_ms,
        toMs: o.to_ms ?? end,
      })),
    });
  }
  return result;
}

function groupBy<T>(rows: readonly T[], key: (r: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = map.get(k);
    if (list) list.push(r);
    else map.set(k, [r]);
  }
  return map;
}
