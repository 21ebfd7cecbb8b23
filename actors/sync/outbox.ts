/**
 * The sync actor's outbox in the machine journal: every fleet event is
 * written here (committed, `synchronous=FULL`) before it is published, and
 * deleted only after JetStream acknowledged it. A crash, a power loss or a
 * week without uplink loses nothing; a publish repeated after a crash is
 * dropped by JetStream's duplicate window (the event id is the message id).
 *
 * Bounded for telemetry only: past `maxRows`, the oldest temperature samples
 * make room. Orders, payments, stock, alerts and faults are never dropped.
 */
import { type Journal, migrate, transaction } from "../../journal/journal.ts";
import type { FleetKind } from "../../protocol/fleet.ts";

/** One queued event. */
export interface OutboxRow {
  seq: number;
  eventId: string;
  kind: FleetKind;
  subject: string;
  /** The encoded event (JSON). */
  body: string;
  createdAt: number;
}

/** Kinds that may be dropped when the outbox is full. */
const droppable: readonly FleetKind[] = ["temperature", "metric"];

const steps = [
  `CREATE TABLE sync_outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     event_id TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL,
     subject TEXT NOT NULL,
     body TEXT NOT NULL,
     created_at INTEGER NOT NULL);
   CREATE INDEX sync_outbox_kind ON sync_outbox (kind, seq);
   CREATE TABLE sync_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);`,
];

/** Counters kept across restarts. */
export interface OutboxCounters {
  sentTotal: number;
  droppedTelemetry: number;
  lastAckTs: number | null;
}

/** The outbox of one machine journal. */
export class Outbox {
  private rows: number;

  /** Migrates the `sync_*` tables of `journal` and counts what is queued. */
  constructor(private readonly journal: Journal, private readonly maxRows = 100_000) {
    migrate(journal, "sync", steps);
    const row = journal.prepare("SELECT count(*) AS n FROM sync_outbox").get() as { n: number };
    this.rows = row.n;
  }

  /** Events queued. */
  depth(): number {
    return this.rows;
  }

  /** Clock ms of the oldest queued event, or null when empty. */
  oldestTs(): number | null {
    const row = this.journal.prepare("SELECT min(created_at) AS t FROM sync_outbox").get() as {
      t: number | null;
    };
    return row.t;
  }

  /**
   * Queues one encoded event; a repeat of an id already queued is ignored.
   * Returns false when the event was a repeat.
   */
  add(row: Omit<OutboxRow, "seq">): boolean {
    return transaction(this.journal, () => {
      if (this.rows >= this.maxRows) this.makeRoom();
      const result = this.journal.prepare(
        `INSERT OR IGNORE INTO sync_outbox (event_id, kind, subject, body, created_at)
         VALUES (?, ?, ?, ?, ?)`,
      ).run(row.eventId, row.kind, row.subject, row.body, row.createdAt);
      const added = Number(result.changes) === 1;
      if (added) this.rows++;
      return added;
    });
  }

  private makeRoom(): void {
    for (const kind of droppable) {
      const r = this.journal.prepare(
        `DELETE FROM sync_outbox WHERE seq = (SELECT min(seq) FROM sync_outbox WHERE kind = ?)`,
      ).run(kind);
      if (Number(r.changes) === 1) {
        this.rows--;
        this.bump("droppedTelemetry", 1);
        return;
      }
    }
  }

  /** The oldest `limit` queued events, in the order they were written. */
  peek(limit: number): OutboxRow[] {
    const rows = this.journal.prepare(
      `SELECT seq, event_id, kind, subject, body, created_at FROM sync_outbox
        ORDER BY seq LIMIT ?`,
    ).all(limit) as Array<{
      seq: number;
      event_id: string;
      kind: FleetKind;
      subject: string;
      body: string;
      created_at: number;
    }>;
    return rows.map((r) => ({
      seq: r.seq,
      eventId: r.event_id,
      kind: r.kind,
      subject: r.subject,
      body: r.body,
      createdAt: r.created_at,
    }));
  }

  /** Deletes events JetStream acknowledged, and notes when. */
  acknowledged(seqs: readonly number[], nowMs: number): void {
    if (!seqs.length) return;
    transaction(this.journal, () => {
      const del = this.journal.prepare("DELETE FROM sync_outbox WHERE seq = ?");
      let removed = 0;
      for (const seq of seqs) removed += Number(del.run(seq).changes);
      this.rows -= removed;
      this.bump("sentTotal", removed);
      this.journal.prepare(
        `INSERT INTO sync_state (key, value) VALUES ('lastAckTs', ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ).run(nowMs);
    });
  }

  /** Counters kept in the journal. */
  counters(): OutboxCounters {
    const rows = this.journal.prepare("SELECT key, value FROM sync_state").all() as Array<{
      key: string;
      value: number;
    }>;
    const get = (k: string) => rows.find((r) => r.key === k)?.value;
    return {
      sentTotal: get("sentTotal") ?? 0,
      droppedTelemetry: get("droppedTelemetry") ?? 0,
      lastAckTs: get("lastAckTs") ?? null,
    };
  }

  private bump(key: string, by: number): void {
    this.journal.prepare(
      `INSERT INTO sync_state (key, value) VALUES (?, ?)
       ON CONFLICT (key) DO UPDATE SET value = value + excluded.value`,
    ).run(key, by);
  }
}
