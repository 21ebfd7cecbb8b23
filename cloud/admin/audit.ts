/**
 * What operators did: every state-changing admin request that passed
 * authentication is logged with who, what, on which machine and how it ended
 * (the audit log); work on a machine is also a maintenance log (seed 003 §3.6).
 */
import { createCryptoRandom, type Random } from "../../random/random.ts";
import type { Queryable } from "../db/database.ts";
import { at, ms, toMs } from "./sql.ts";
import type { AuditEntry, MaintenanceLog } from "./views.ts";

/** Appends `entry` to the audit log. */
export async function recordAudit(
  db: Queryable,
  entry: AuditEntry,
  random: Random = createCryptoRandom(),
): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (audit_id, at, token_id, actor, role, action, machine_id, outcome,
                            details)
     VALUES ($1, ${at("$2")}, $3, $4, $5, $6, $7, $8, $9::text::jsonb)`,
    [
      random.uuid(),
      entry.atMs,
      entry.tokenId,
      entry.actor,
      entry.role,
      entry.action,
      entry.machineId,
      entry.outcome,
      entry.details === undefined ? null : JSON.stringify(entry.details),
    ],
  );
}

/** The latest audit entries, newest first. */
export async function listAudit(
  db: Queryable,
  options: { machineId?: string | undefined; limit?: number } = {},
): Promise<AuditEntry[]> {
  const rows = await db.query<{
    at_ms: number;
    token_id: string | null;
    actor: string;
    role: string | null;
    action: string;
    machine_id: string | null;
    outcome: string;
    details: unknown;
  }>(
    `SELECT ${ms("at")} AS at_ms, token_id, actor, role, action, machine_id, outcome, details
       FROM audit_log ${options.machineId === undefined ? "" : "WHERE machine_id = $2"}
      ORDER BY at DESC, audit_id LIMIT $1`,
    options.machineId === undefined
      ? [options.limit ?? 100]
      : [options.limit ?? 100, options.machineId],
  );
  return rows.map((r) => ({
    atMs: Math.round(r.at_ms),
    tokenId: r.token_id,
    actor: r.actor,
    role: r.role,
    action: r.action,
    machineId: r.machine_id,
    outcome: r.outcome,
    details: r.details,
  }));
}

/** Maintenance log types (seed §3.6). */
export type MaintenanceType = MaintenanceLog["type"];

/**
 * Opens a maintenance log on `machineId` and returns its id; `completed`
 * closes it at once. A closed log marks the machine maintained.
 */
export async function addMaintenanceLog(
  db: Queryable,
  log: {
    machineId: string;
    type: MaintenanceType;
    performedBy: string;
    description: string;
    details?: unknown;
    atMs: number;
    completed: boolean;
  },
  random: Random = createCryptoRandom(),
): Promise<string> {
  const logId = random.uuid();
  await db.query(
    `INSERT INTO maintenance_logs (machine_id, log_id, type, performed_by, description, details,
                                   started_at, completed_at)
     VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, ${at("$7")},
             CASE WHEN $8::boolean THEN ${at("$7")} END)`,
    [
      log.machineId,
      logId,
      log.type,
      log.performedBy.slice(0, 200),
      log.description.slice(0, 2000),
      log.details === undefined ? null : JSON.stringify(log.details),
      log.atMs,
      log.completed,
    ],
  );
  if (log.completed) await markMaintained(db, log.machineId, log.atMs);
  return logId;
}

async function markMaintained(db: Queryable, machineId: string, atMs: number): Promise<void> {
  await db.query(
    `UPDATE machines SET last_maintenance_at = GREATEST(last_maintenance_at, ${at("$2")}),
            updated_at = now()
      WHERE machine_id = $1`,
    [machineId, atMs],
  );
}

/**
 * Records how maintenance log `logId` ended, `details` merged in: completed
 * at `atMs` (the machine marked maintained), or left open when null.
 */
export async function completeMaintenanceLog(
  db: Queryable,
  machineId: string,
  logId: string,
  atMs: number | null,
  details: Record<string, unknown>,
): Promise<void> {
  await db.query(
    `UPDATE maintenance_logs
        SET completed_at = CASE WHEN $3::float8 IS NULL THEN NULL ELSE ${at("$3")} END,
            details = coalesce(details, '{}'::jsonb) || $4::text::jsonb
      WHERE machine_id = $1 AND log_id = $2`,
    [machineId, logId, atMs, JSON.stringify(details)],
  );
  if (atMs !== null) await markMaintained(db, machineId, atMs);
}

/** The latest maintenance logs of `machineId`, newest first. */
export async function listMaintenanceLogs(
  db: Queryable,
  machineId: string,
  limit = 50,
): Promise<MaintenanceLog[]> {
  const rows = await db.query<{
    log_id: string;
    type: MaintenanceType;
    performed_by: string;
    description: string;
    details: unknown;
    started_ms: number;
    completed_ms: number | null;
  }>(
    `SELECT log_id, type, performed_by, description, details,
            ${ms("started_at")} AS started_ms, ${ms("completed_at")} AS completed_ms
       FROM maintenance_logs WHERE machine_id = $1
      ORDER BY started_at DESC, log_id LIMIT $2`,
    [machineId, limit],
  );
  return rows.map((r) => ({
    logId: r.log_id,
    machineId,
    type: r.type,
    performedBy: r.performed_by,
    description: r.description,
    details: r.details,
    startedAt: Math.round(r.started_ms),
    completedAt: toMs(r.completed_ms),
  }));
}
