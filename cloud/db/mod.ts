/**
 * The cloud's storage: Postgres or PGlite behind one interface, the schema's
 * migrations, and the machine registry (API keys, desired configs).
 *
 * @example
 * ```ts
 * const db = await openDatabase({ url: Deno.env.get("DATABASE_URL") });
 * await migrateCloud(db);
 * const key = await addMachine(db, "m-1", { name: "Lobby" });
 * ```
 */
export {
  type Database,
  openDatabase,
  type OpenDatabaseOptions,
  openPglite,
  openPostgres,
  type Queryable,
  type Row,
} from "./database.ts";
export { cloudMigrations, machinePartitions, migrateCloud, type Migration } from "./migrations.ts";
export {
  addMachine,
  type AddMachineOptions,
  checkMachineKey,
  ConfigConflictError,
  ConfigItem,
  type DesiredConfig,
  desiredConfig,
  hashSecret,
  type KeyCheck,
  type NewConfig,
  newMachineKey,
  putDesiredConfig,
} from "./machines.ts";
