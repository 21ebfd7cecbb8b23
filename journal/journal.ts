/**
 * The machine's durable record: embedded SQLite through Deno's `node:sqlite`,
 * WAL with `synchronous=FULL`, so a committed row survives a power loss.
 * Each actor owns its tables and declares them with {@linkcode migrate}.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";

/** An open journal database. */
export type Journal = DatabaseSync;

/**
 * Opens (creating) the journal at `path` (":memory:" for a throwaway one).
 * Several processes may open the same file: WAL lets them share it.
 */
export function openJournal(path: string): Journal {
  const db = new DatabaseSync(path);
  // Each SQL text is compiled once: the stores prepare their statements at every
  // call, and compiling one costs more than running it.
  const compile = db.prepare.bind(db);
  const statements = new Map<string, StatementSync>();
  db.prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (!statement) {
      statement = compile(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA busy_timeout=5000");
  db.exec("PRAGMA foreign_keys=ON");
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_migrations (owner TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (owner, version))",
  );
  return db;
}

/**
 * Applies `steps` of `owner` not applied yet, each in its own transaction;
 * step i has version i + 1. Idempotent across restarts and processes.
 */
export function migrate(db: Journal, owner: string, steps: readonly string[]): void {
  const applied = db.prepare("SELECT 1 FROM schema_migrations WHERE owner = ? AND version = ?");
  const record = db.prepare("INSERT INTO schema_migrations (owner, version) VALUES (?, ?)");
  steps.forEach((sql, i) => {
    transaction(db, () => {
      if (applied.get(owner, i + 1)) return;
      db.exec(sql);
      record.run(owner, i + 1);
    });
  });
}

/** Runs `fn` in one IMMEDIATE transaction; rolls back if it throws. */
export function transaction<T>(db: Journal, fn: () => T): T {
  db.exec("BEGIN IMMEDIATE");
  try {
    const result = fn();
    db.exec("COMMIT");
    return result;
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}
