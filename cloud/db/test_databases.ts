/**
 * Test fixtures: a fresh database per test, on the shared Postgres (a new
 * `fornax_t_<random>` database, dropped after) or on PGlite in a temporary
 * folder, so parallel tests never collide and each suite runs on both.
 */
import postgres from "postgres";
import { type Database, openPglite, openPostgres } from "./database.ts";
import { migrateCloud } from "./migrations.ts";

/** The shared test server's maintenance database (`TEST_DATABASE_URL`). */
export const testPostgresUrl = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** The backends every storage suite runs on. */
export const backends = ["postgres", "pglite"] as const;
/** A storage backend. */
export type Backend = (typeof backends)[number];

/** A database of one test. */
export interface TestDatabase {
  db: Database;
  backend: Backend;
  /** The Postgres URL of this database (postgres backend only). */
  url: string | null;
  /** Closes the database and drops it (or removes its folder). */
  dispose(): Promise<void>;
}

/** Options of {@linkcode openTestDatabase}. */
export interface TestDatabaseOptions {
  /** Apply the cloud migrations (default true). */
  migrate?: boolean;
  /** Pool size of the postgres backend (default 10). */
  maxConnections?: number;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates an empty Postgres database on the shared server and returns its URL. */
export async function createPostgresDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `fornax_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(testPostgresUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return {
    url: withDatabase(testPostgresUrl, name),
    async drop() {
      const a = postgres(testPostgresUrl, { max: 1, onnotice: () => {} });
      try {
        await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/** A fresh, migrated database on `backend`. */
export async function openTestDatabase(
  backend: Backend,
  options: TestDatabaseOptions = {},
): Promise<TestDatabase> {
  let test: TestDatabase;
  if (backend === "postgres") {
    const created = await createPostgresDatabase();
    const db = openPostgres(created.url, {
      ...(options.maxConnections ? { maxConnections: options.maxConnections } : {}),
    });
    test = {
      db,
      backend,
      url: created.url,
      dispose: async () => {
        await db.close();
        await created.drop();
      },
    };
  } else {
    const dir = await Deno.makeTempDir({ prefix: "fornax-pglite-" });
    const db = await openPglite(dir);
    test = {
      db,
      backend,
      url: null,
      dispose: async () => {
        await db.close();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  }
  if (options.migrate ?? true) await migrateCloud(test.db);
  return test;
}
