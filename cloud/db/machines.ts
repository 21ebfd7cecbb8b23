/**
 * Machines, their API keys and their desired configs: what `/sync`, the
 * ingestion and the operator's CLI share. Keys are 244-bit random strings
 * stored as SHA-256 (a slow hash adds nothing for keys that cannot be guessed).
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { createCryptoRandom, type Random } from "../../random/random.ts";
import { MachineId } from "../../protocol/define.ts";
import { Cents } from "../../protocol/entities.ts";
import type { Database, Queryable } from "./database.ts";

/** One item of a desired config: what the machine sells, at what price, how many. */
export const ConfigItem = z.object({
  itemId: z.string().min(1).max(64),
  name: z.string().min(1).max(100),
  priceCents: Cents,
  quantity: z.number().int().nonnegative().max(1_000_000),
});
/** One item of a desired config. */
export type ConfigItem = z.infer<typeof ConfigItem>;

/** A desired config version of one machine. */
export interface DesiredConfig {
  seq: number;
  version: string;
  items: ConfigItem[];
  /** The full controller config (`protocol/config.ts`), when the machine is a Fornax controller. */
  config: unknown;
}

/** A conditional config write lost to a newer one, or named a version already used. */
export class ConfigConflictError extends Error {
  /** Creates the error with a sentence naming the values. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConfigConflictError";
  }
}

/** Machine ids that would collide with fleet subjects (`fleet.alerts.<severity>`). */
const reservedMachineIds = new Set(["alerts"]);

/**
 * SHA-256 of `secret`, hex. Computed at once by `node:crypto` (about 1 µs;
 * `crypto.subtle` takes tens, more under load): `/sync` hashes a key and
 * every sale of each request.
 */
export function hashSecret(secret: string): Promise<string> {
  return Promise.resolve(createHash("sha256").update(secret).digest("hex"));
}

/** A new machine API key: `fmk_` and 244 random bits in hex. */
export function newMachineKey(random: Random = createCryptoRandom()): string {
  return `fmk_${random.uuid().replaceAll("-", "")}${random.uuid().replaceAll("-", "")}`;
}

/** Options of {@linkcode addMachine}. */
export interface AddMachineOptions {
  name?: string;
  locationAddress?: string;
  latitude?: number;
  longitude?: number;
  random?: Random;
}

/**
 * Registers `machineId` (or marks a machine ingestion already saw as
 * registered) and issues it a new API key, returned once: only its hash is kept.
 *
 * @throws {RangeError} When `machineId` is not a valid machine id or is reserved.
 */
export async function addMachine(
  db: Database,
  machineId: string,
  options: AddMachineOptions = {},
): Promise<string> {
  const parsed = MachineId.safeParse(machineId);
  if (!parsed.success || reservedMachineIds.has(machineId)) {
    throw new RangeError(
      `Machine id must be 1-64 of A-Z a-z 0-9 _ - and not "alerts", got "${machineId}"`,
    );
  }
  const key = newMachineKey(options.random);
  const keyHash = await hashSecret(key);
  await db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO machines (machine_id, name, location_address, latitude, longitude, registered)
       VALUES ($1, $2, $3, $4, $5, true)
       ON CONFLICT (machine_id) DO UPDATE SET
         registered = true,
         name = COALESCE(EXCLUDED.name, machines.name),
         location_address = COALESCE(EXCLUDED.location_address, machines.location_address),
         latitude = COALESCE(EXCLUDED.latitude, machines.latitude),
         longitude = COALESCE(EXCLUDED.longitude, machines.longitude),
         updated_at = now()`,
      [
        machineId,
        options.name ?? null,
        options.locationAddress ?? null,
        options.latitude ?? null,
        options.longitude ?? null,
      ],
    );
    await tx.query(
      "INSERT INTO machine_api_keys (machine_id, key_hash, key_prefix) VALUES ($1, $2, $3)",
      [machineId, keyHash, key.slice(0, 12)],
    );
  });
  return key;
}

/** Who a presented machine key is: this machine's, another machine's, or nobody's. */
export type KeyCheck = "ok" | "other_machine" | "unknown";

/** Checks `key` against the unrevoked keys of `machineId`. */
export async function checkMachineKey(
  db: Queryable,
  machineId: string,
  key: string,
): Promise<KeyCheck> {
  const keyHash = await hashSecret(key);
  const rows = await db.query<{ machine_id: string }>(
    `SELECT machine_id FROM machine_api_keys
      WHERE key_hash = $1 AND revoked_at IS NULL
      ORDER BY (machine_id = $2) DESC LIMIT 1`,
    [keyHash, machineId],
    { prepare: true },
  );
  const row = rows[0];
  if (!row) return "unknown";
  return row.machine_id === machineId ? "ok" : "other_machine";
}

/** The desired config of `machineId`, or null when none was set. */
export async function desiredConfig(
  db: Queryable,
  machineId: string,
): Promise<DesiredConfig | null> {
  const rows = await db.query<{ seq: number; version: string; items: unknown; config: unknown }>(
    `SELECT c.seq, c.version, c.items, c.config
       FROM machines m
       JOIN machine_configs c ON c.machine_id = m.machine_id AND c.seq = m.desired_config_seq
      WHERE m.machine_id = $1`,
    [machineId],
    { prepare: true },
  );
  const row = rows[0];
  if (!row) return null;
  return {
    seq: row.seq,
    version: row.version,
    items: z.array(ConfigItem).parse(row.items),
    config: row.config ?? null,
  };
}

/** A config version to make desired. */
export interface NewConfig {
  version: string;
  items: ConfigItem[];
  config?: unknown;
  createdBy?: string;
}

/**
 * Makes `next` the desired config of `machineId`: a conditional write, so an
 * operator working from an older view cannot overwrite a newer version.
 * `expectedSeq` is the seq the caller saw (0 when none); omit it to write
 * unconditionally. Returns the new seq.
 *
 * @throws {ConfigConflictError} When the desired seq moved on, or `version` was used before.
 * @throws {RangeError} When the machine is unknown.
 */
export async function putDesiredConfig(
  db: Database,
  machineId: string,
  next: NewConfig,
  expectedSeq?: number,
): Promise<number> {
  const items = z.array(ConfigItem).parse(next.items);
  return await db.transaction(async (tx) => {
    const current = await tx.query<{ seq: number }>(
      "SELECT desired_config_seq AS seq FROM machines WHERE machine_id = $1 FOR UPDATE",
      [machineId],
    );
    const row = current[0];
    if (!row) throw new RangeError(`Machine "${machineId}" is not registered`);
    if (expectedSeq !== undefined && row.seq !== expectedSeq) {
      throw new ConfigConflictError(
        `Desired config of "${machineId}" is at seq ${row.seq}, not the expected ${expectedSeq}`,
      );
    }
    const used = await tx.query(
      "SELECT 1 FROM machine_configs WHERE machine_id = $1 AND version = $2",
      [machineId, next.version],
    );
    if (used.length) {
      throw new ConfigConflictError(
        `Config version "${next.version}" of "${machineId}" was used before`,
      );
    }
    const seq = row.seq + 1;
    await tx.query(
      `INSERT INTO machine_configs (machine_id, seq, version, items, config, created_by)
       VALUES ($1, $2, $3, $4::text::jsonb, $5::text::jsonb, $6)`,
      [
        machineId,
        seq,
        next.version,
        JSON.stringify(items),
        next.config === undefined ? null : JSON.stringify(next.config),
        next.createdBy ?? null,
      ],
    );
    await tx.query(
      `UPDATE machines SET desired_config_seq = $2, desired_config_version = $3, updated_at = now()
        WHERE machine_id = $1`,
      [machineId, seq, next.version],
    );
    return seq;
  });
}
