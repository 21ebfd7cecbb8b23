/**
 * Keeps `processed_events` (the gate that admits an alert event or a dead
 * letter once) from growing without bound: ids are deleted once they are
 * older than the retention, in short slices.
 *
 * Why a retention of twice the fleet stream's max age (14 days) is safe:
 * JetStream redelivers a message only while the stream holds it, at most its
 * max age after it was stored, so every redelivery of an admitted id comes
 * within 7 days of its admission. The remaining source of a repeat is a
 * machine that published an event, lost the acknowledgement and sends it
 * again after JetStream's duplicate window (2 hours): the gate still knows the
 * id if the machine comes back within the retention. Everything else
 * ingestion writes is idempotent by its keys and needs no memory of ids.
 *
 * @example
 * ```ts
 * const deleted = await pruneProcessedEvents(db); // ids admitted more than 14 days ago
 * ```
 */
import type { Database } from "../db/database.ts";
import { fleetMaxAgeMs } from "../../protocol/fleet.ts";

/** How long an admitted id is kept: twice the fleet stream's max age (see the module doc). */
export const processedEventsRetentionMs = 2 * fleetMaxAgeMs;

/** A lock id only pruning takes (any constant bigint): one pruner at a time. */
const pruneLockId = 4_751_220_732;

/** Options of {@linkcode pruneProcessedEvents}. */
export interface PruneOptions {
  /** Ids admitted longer ago than this are deleted (default {@linkcode processedEventsRetentionMs}). */
  retentionMs?: number;
  /** Rows per transaction (default 5000): each slice holds its locks briefly. */
  slice?: number;
  /** Slices per call at most (default 200): a huge backlog is worked off over several calls. */
  maxSlices?: number;
}

/**
 * Deletes the ids of `processed_events` admitted more than the retention ago
 * (by the database's clock, which stamped them) and returns how many. When
 * another process is pruning, returns at once.
 *
 * @throws {RangeError} When the retention is shorter than the fleet stream's max age.
 */
export async function pruneProcessedEvents(
  db: Database,
  options: PruneOptions = {},
): Promise<number> {
  const retentionMs = options.retentionMs ?? processedEventsRetentionMs;
  if (!(retentionMs >= fleetMaxAgeMs)) {
    throw new RangeError(
      `Retention must be at least the stream's max age (${fleetMaxAgeMs} ms), got ${retentionMs}`,
    );
  }
  const slice = options.slice ?? 5000;
  const maxSlices = options.maxSlices ?? 200;
  let deleted = 0;
  for (let i = 0; i < maxSlices; i++) {
    const n = await db.transaction(async (tx) => {
      const [lock] = await tx.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_xact_lock($1) AS ok",
        [pruneLockId],
      );
      if (!lock?.ok) return null;
      const rows = await tx.query<{ n: number }>(
        `WITH old AS (
           SELECT machine_id, event_id FROM processed_events
            WHERE ingested_at < now() - make_interval(secs => $1::float8)
            ORDER BY ingested_at LIMIT $2),
         gone AS (
           DELETE FROM processed_events p USING old
            WHERE p.machine_id = old.machine_id AND p.event_id = old.event_id
           RETURNING 1)
         SELECT count(*)::int AS n FROM gone`,
        [retentionMs / 1000, slice],
      );
      return rows[0]?.n ?? 0;
    });
    if (n === null) break;
    deleted += n;
    if (n < slice) break;
  }
  return deleted;
}
