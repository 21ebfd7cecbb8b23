/**
 * The cloud's record: Postgres through postgres.js at `DATABASE_URL`, or, when
 * it is unset, embedded PGlite in a data folder. One small interface over
 * both, so the same SQL, migrations and tests run on each.
 *
 * Conventions that keep the two backends alike: parameters are `$1…`; pass
 * JSON as text and cast it in SQL (`$1::text::jsonb`), arrays as JS arrays
 * with an explicit cast (`$1::text[]`); `bigint` columns come back as numbers.
 *
 * @example
 * ```ts
 * const db = await openDatabase({ url: Deno.env.get("DATABASE_URL") });
 * await migrateCloud(db);
 * const rows = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM machines");
 * await db.close();
 * ```
 */
import postgres from "postgres";
import { PGlite } from "@electric-sql/pglite";
import { join } from "node:path";

/** A row as a record of column values. */
export type Row = Record<string, unknown>;

/** How to run one statement. */
export interface QueryOptions {
  /**
   * Prepare the statement once per connection and reuse it (Postgres; PGlite
   * ignores it): one round trip instead of two, no parse and plan per call.
   * Only for statements whose text is constant, run again and again.
   */
  prepare?: boolean;
}

/** What runs SQL: the database itself or a transaction. */
export interface Queryable {
  /** Runs one statement with `$n` parameters and returns its rows. */
  query<T = Row>(sql: string, params?: readonly unknown[], options?: QueryOptions): Promise<T[]>;
  /** Runs a script of several statements without parameters. */
  exec(script: string): Promise<void>;
}

/** An open database. */
export interface Database extends Queryable {
  /** Which engine answers. */
  readonly backend: "postgres" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Closes every connection; pending queries fail. */
  close(): Promise<void>;
}

/** Options of {@linkcode openDatabase}. */
export interface OpenDatabaseOptions {
  /** A Postgres URL; when absent, PGlite in `dataDir`. */
  url?: string | undefined;
  /** The data folder of PGlite (default `FORNAX_DATA` or `./data`); the store is `cloud-pglite` in it. */
  dataDir?: string;
  /** Connections of the postgres.js pool (default 10). */
  maxConnections?: number;
  /** Seconds a connection attempt may take (default 5). */
  connectTimeoutS?: number;
}

/** Opens Postgres at `options.url`, or PGlite in the data folder when no URL is given. */
export function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  if (options.url) return Promise.resolve(openPostgres(options.url, options));
  const dataDir = options.dataDir ?? Deno.env.get("FORNAX_DATA") ?? "./data";
  return openPglite(join(dataDir, "cloud-pglite"));
}

/** Postgres through a postgres.js pool; connects lazily, reconnects after an outage. */
export function openPostgres(
  url: string,
  options: { maxConnections?: number; connectTimeoutS?: number } = {},
): Database {
  const sql = postgres(url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeoutS ?? 5,
    onnotice: () => {},
    // int8 as numbers, like PGlite: our counts and ms stay far below 2^53.
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (x: unknown) => String(x),
        parse: (x: string) => Number(x),
      },
    },
  });
  const over = (s: postgres.Sql | postgres.TransactionSql): Queryable => ({
    // A plain array, as PGlite gives: postgres.js's Result is a subclass.
    query: async <T>(text: string, params: readonly unknown[] = [], options: QueryOptions = {}) =>
      [
        ...(await s.unsafe(text, params as postgres.ParameterOrJSON<never>[], {
          prepare: options.prepare ?? false,
        })),
      ] as unknown as T[],
    exec: async (script: string) => {
      await s.unsafe(script).simple();
    },
  });
  return {
    backend: "postgres",
    ...over(sql),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      sql.begin((tx) => fn(over(tx))) as Promise<T>,
    close: () => sql.end({ timeout: 5 }),
  };
}

/**
 * PGlite (Postgres in WebAssembly) with its store in `path` (created if
 * missing), or in memory when `path` is undefined. One connection: queries
 * and transactions take turns.
 */
export async function openPglite(path?: string): Promise<Database> {
  if (path) await Deno.mkdir(path, { recursive: true });
  const pg = await PGlite.create(path);
  const over = (
    s: { query: PGlite["query"]; exec: PGlite["exec"] },
  ): Queryable => ({
    query: async <T>(text: string, params: readonly unknown[] = []) =>
      (await s.query<T>(text, params as unknown[])).rows,
    exec: async (script: string) => {
      await s.exec(script);
    },
  });
  let closed = false;
  return {
    backend: "pglite",
    ...over(pg),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(over(tx))),
    close: async () => {
      if (closed) return;
      closed = true;
      await pg.close();
    },
  };
}
