/**
 * The cloud's schema as versioned SQL migrations, applied on start in one
 * transaction under an advisory lock: two processes starting at once apply
 * each migration once, and a migration applied before is never applied again.
 *
 * Every per-machine table is `PARTITION BY HASH (machine_id)` (seed 000: the
 * machine id is the partition key), in {@linkcode machinePartitions}
 * partitions; PGlite is Postgres too and takes the same DDL. Fleet-wide
 * tables (machines, pizzas, people's tokens, schema_migrations) are not per
 * machine and stay whole. Every table that ingestion appends to has a key
 * that makes a replayed event a no-op: the event id, or for time series the
 * natural key (a sensor's sample at an instant); `processed_events` holds the
 * ids of events whose effect is not idempotent by nature (alert repeats), for
 * a bounded time.
 *
 * Instants are `timestamptz`; money integer cents; temperatures °C.
 */
import type { Database } from "./database.ts";

/** One schema step. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Hash partitions of each per-machine table. */
export const machinePartitions = 4;

/** A lock id only our migrations take (any constant bigint). */
const migrationLockId = 4_751_220_731;

/**
 * `CREATE TABLE name (columns) PARTITION BY HASH (machine_id)` and its
 * partitions; `fillfactor` below 100 leaves room in each page for tables that
 * are updated in place (upserts), so those updates stay HOT.
 */
function perMachine(table: string, columns: string, extra = "", fillfactor = 100): string {
  const storage = fillfactor < 100 ? ` WITH (fillfactor = ${fillfactor})` : "";
  const parts = Array.from(
    { length: machinePartitions },
    (_, i) =>
      `CREATE TABLE ${table}_p${i} PARTITION OF ${table} ` +
      `FOR VALUES WITH (MODULUS ${machinePartitions}, REMAINDER ${i})${storage};`,
  );
  return [
    `CREATE TABLE ${table} (\n  machine_id text NOT NULL,\n  ${columns.trim()}\n) PARTITION BY HASH (machine_id);`,
    ...parts,
    extra.trim(),
  ].join("\n");
}

const schemaV1 = [
  // The fleet's registry: one row per machine, also created by ingestion when a
  // machine first speaks (registered = false until `fleet machine add`).
  // Updated often (last seen, status): no index but the key, and room in each
  // page, so updates stay HOT; 10 000 rows scan in a millisecond anyway.
  `CREATE TABLE machines (
  machine_id text PRIMARY KEY,
  name text,
  location_address text,
  latitude double precision,
  longitude double precision,
  registered boolean NOT NULL DEFAULT false,
  status text NOT NULL DEFAULT 'OFFLINE',
  status_reason text,
  cash_only boolean NOT NULL DEFAULT false,
  maintenance boolean NOT NULL DEFAULT false,
  status_at timestamptz,
  software_version text,
  desired_config_seq integer NOT NULL DEFAULT 0,
  desired_config_version text,
  reported_config_version text,
  reported_config_at timestamptz,
  outbox_depth integer,
  inventory_at timestamptz,
  low_stock_threshold integer NOT NULL DEFAULT 2,
  last_seen_at timestamptz,
  last_event_at timestamptz,
  last_maintenance_at timestamptz,
  offline_alerted_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);`,
  // The fleet's catalogue of pizzas and items (seed 003 §3.2); per-machine
  // prices and quantities live in machine_configs.
  `CREATE TABLE pizzas (
  pizza_id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  size text,
  toppings jsonb NOT NULL DEFAULT '[]',
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  calories integer,
  allergens jsonb NOT NULL DEFAULT '[]',
  image_url text,
  cooking_time_ms integer,
  cooking_temp_c double precision,
  active boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);`,
  // People's bearer tokens, stored as SHA-256 of the token.
  `CREATE TABLE api_tokens (
  token_id text PRIMARY KEY,
  name text NOT NULL,
  role text NOT NULL CHECK (role IN ('admin', 'technician', 'viewer')),
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz
);`,
  // Desired configs, one row per version; machines.desired_config_seq points at
  // the current one and is moved by a conditional update (device shadow).
  perMachine(
    "machine_configs",
    `seq integer NOT NULL CHECK (seq > 0),
  version text NOT NULL,
  items jsonb NOT NULL,
  config jsonb,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, seq),
  UNIQUE (machine_id, version)`,
  ),
  // Machines' API keys, stored as SHA-256 of the key (keys are 244-bit random).
  perMachine(
    "machine_api_keys",
    `key_hash text NOT NULL,
  key_prefix text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_used_at timestamptz,
  PRIMARY KEY (machine_id, key_hash)`,
    `CREATE INDEX machine_api_keys_hash ON machine_api_keys (key_hash);`,
  ),
  perMachine(
    "orders",
    `order_id text NOT NULL,
  pizza_id text NOT NULL,
  status text NOT NULL,
  customer_email text,
  total_amount_cents integer NOT NULL CHECK (total_amount_cents >= 0),
  payment_method text,
  payment_transaction_id text,
  placed_at timestamptz NOT NULL,
  ready_at timestamptz,
  dispensed_at timestamptz,
  reason text,
  updated_at timestamptz NOT NULL,
  event_id text NOT NULL,
  PRIMARY KEY (machine_id, order_id)`,
    `CREATE INDEX orders_placed ON orders (machine_id, placed_at);
CREATE INDEX orders_placed_fleet ON orders (placed_at);`,
    80,
  ),
  perMachine(
    "payments",
    `payment_id text NOT NULL,
  order_id text NOT NULL,
  amount_cents integer NOT NULL CHECK (amount_cents >= 0),
  method text NOT NULL,
  status text NOT NULL,
  transaction_id text,
  last4 text CHECK (last4 ~ '^[0-9]{4}$'),
  inserted_cents integer NOT NULL DEFAULT 0,
  change_cents integer NOT NULL DEFAULT 0,
  gateway_response jsonb,
  processed_at timestamptz,
  updated_at timestamptz NOT NULL,
  event_id text NOT NULL,
  PRIMARY KEY (machine_id, payment_id)`,
    `CREATE INDEX payments_order ON payments (machine_id, order_id);`,
    80,
  ),
  // Sales reported through /sync (seed 000 transactions); analytics counts them as orders.
  perMachine(
    "sales",
    `sale_id text NOT NULL,
  item_id text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents >= 0),
  sold_at timestamptz NOT NULL,
  source text NOT NULL,
  order_id text,
  PRIMARY KEY (machine_id, sale_id)`,
    `CREATE INDEX sales_sold ON sales (machine_id, sold_at);
CREATE INDEX sales_sold_fleet ON sales (sold_at);`,
  ),
  // Sellable count per item, as the machine last reported it.
  perMachine(
    "inventory_levels",
    `item_id text NOT NULL,
  quantity integer NOT NULL CHECK (quantity >= 0),
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (machine_id, item_id)`,
    "",
    80,
  ),
  // Slot-level stock (seed 003 §3.4), the machine's latest snapshot.
  perMachine(
    "inventory_items",
    `item_id text NOT NULL,
  pizza_id text NOT NULL,
  quantity integer NOT NULL CHECK (quantity >= 0),
  storage_slot integer NOT NULL,
  expires_at timestamptz NOT NULL,
  added_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (machine_id, item_id)`,
  ),
  perMachine(
    "cooking_sessions",
    `session_id text NOT NULL,
  order_id text NOT NULL,
  start_temp_c double precision,
  target_temp_c double precision,
  final_temp_c double precision,
  status text NOT NULL,
  started_at timestamptz NOT NULL,
  completed_at timestamptz,
  cook_time_ms integer,
  PRIMARY KEY (machine_id, session_id)`,
    `CREATE INDEX cooking_sessions_started ON cooking_sessions (machine_id, started_at);`,
    80,
  ),
  // One open alert per machine and type (the partial unique index); a repeat
  // raises count and last_seen_at instead of adding a row.
  perMachine(
    "alerts",
    `alert_id text NOT NULL,
  alert_type text NOT NULL,
  severity text NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
  component text,
  message text NOT NULL,
  order_id text,
  source text NOT NULL,
  machine_alert_id text,
  count integer NOT NULL DEFAULT 1,
  first_seen_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  resolved boolean NOT NULL DEFAULT false,
  resolved_at timestamptz,
  resolved_by text,
  muted boolean NOT NULL DEFAULT false,
  PRIMARY KEY (machine_id, alert_id)`,
    `CREATE UNIQUE INDEX alerts_one_open ON alerts (machine_id, alert_type) WHERE NOT resolved;
CREATE INDEX alerts_recent ON alerts (machine_id, last_seen_at);`,
    80,
  ),
  // Conditions that alert only after a duration ("storage above 5 °C for 10 min").
  perMachine(
    "alert_conditions",
    `condition text NOT NULL,
  first_breach_at timestamptz NOT NULL,
  last_breach_at timestamptz NOT NULL,
  last_value double precision,
  PRIMARY KEY (machine_id, condition)`,
  ),
  perMachine(
    "maintenance_logs",
    `log_id text NOT NULL,
  type text NOT NULL CHECK (type IN ('ROUTINE', 'REPAIR', 'CLEANING', 'RESTOCKING')),
  performed_by text NOT NULL,
  description text NOT NULL DEFAULT '',
  parts_replaced jsonb NOT NULL DEFAULT '[]',
  cost_cents integer NOT NULL DEFAULT 0 CHECK (cost_cents >= 0),
  details jsonb,
  started_at timestamptz NOT NULL,
  completed_at timestamptz,
  PRIMARY KEY (machine_id, log_id)`,
    `CREATE INDEX maintenance_logs_started ON maintenance_logs (machine_id, started_at);`,
  ),
  perMachine(
    "temperatures",
    `at timestamptz NOT NULL,
  sensor text NOT NULL,
  temp_c double precision NOT NULL,
  target_c double precision,
  heater_pct double precision,
  state text,
  PRIMARY KEY (machine_id, sensor, at)`,
  ),
  perMachine(
    "metrics",
    `at timestamptz NOT NULL,
  name text NOT NULL,
  value double precision NOT NULL,
  labels jsonb,
  PRIMARY KEY (machine_id, name, at)`,
  ),
  perMachine(
    "faults",
    `event_id text NOT NULL,
  component text NOT NULL,
  code text NOT NULL,
  message text NOT NULL,
  order_id text,
  temp_c double precision,
  at timestamptz NOT NULL,
  PRIMARY KEY (machine_id, event_id)`,
    `CREATE INDEX faults_at ON faults (machine_id, at);`,
  ),
  // The food-safety (HACCP) log: pizzas discarded unsold.
  perMachine(
    "food_safety_log",
    `event_id text NOT NULL,
  item_id text NOT NULL,
  pizza_id text NOT NULL,
  storage_slot integer NOT NULL,
  reason text NOT NULL,
  above_limit_ms bigint NOT NULL,
  storage_temp_c double precision NOT NULL,
  at timestamptz NOT NULL,
  PRIMARY KEY (machine_id, event_id)`,
  ),
  // Status changes, for uptime.
  perMachine(
    "machine_status_log",
    `event_id text NOT NULL,
  at timestamptz NOT NULL,
  status text NOT NULL,
  reason text,
  cash_only boolean NOT NULL,
  maintenance boolean NOT NULL,
  PRIMARY KEY (machine_id, event_id)`,
    `CREATE INDEX machine_status_log_at ON machine_status_log (machine_id, at);`,
  ),
  // Ids of events whose effect is not idempotent (alert repeats, dead letters):
  // the gate that admits each once.
  perMachine(
    "processed_events",
    `event_id text NOT NULL,
  kind text NOT NULL,
  event_at timestamptz,
  ingested_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (machine_id, event_id)`,
  ),
].join("\n\n");

/**
 * Version 2, for the admin API and the monitor: duration conditions remember
 * the breach they alerted on; alerts are found by id alone (resolve);
 * operators' actions and monitor runs are logged. Both logs are fleet-wide
 * (an action or a run is not one machine's), so they are not partitioned.
 */
function schemaV2(): string {
  return [
    "ALTER TABLE alert_conditions ADD COLUMN alerted_at timestamptz;",
    "CREATE INDEX alerts_by_id ON alerts (alert_id);",
    // The monitor's payment failure rate reads a machine's recent payments.
    "CREATE INDEX payments_updated ON payments (machine_id, updated_at);",
    `CREATE TABLE audit_log (
  audit_id text PRIMARY KEY,
  at timestamptz NOT NULL,
  token_id text,
  actor text NOT NULL,
  role text,
  action text NOT NULL,
  machine_id text,
  outcome text NOT NULL,
  details jsonb
);`,
    "CREATE INDEX audit_log_at ON audit_log (at);",
    "CREATE INDEX audit_log_machine ON audit_log (machine_id, at);",
    `CREATE TABLE monitor_runs (
  run_id text PRIMARY KEY,
  job text NOT NULL,
  trigger text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  result jsonb NOT NULL
);`,
    "CREATE INDEX monitor_runs_job ON monitor_runs (job, started_at);",
  ].join("\n");
}

/**
 * Version 3: `processed_events` is pruned by admission time (see
 * `cloud/ingest/prune.ts`), so that time is indexed.
 */
const schemaV3 = "CREATE INDEX processed_events_ingested ON processed_events (ingested_at);";

/** The cloud's migrations, in order. */
export const cloudMigrations: readonly Migration[] = [
  { version: 1, name: "fleet schema", sql: schemaV1 },
  { version: 2, name: "admin api and monitor", sql: schemaV2() },
  { version: 3, name: "processed events pruned by age", sql: schemaV3 },
];

/**
 * Applies the migrations of `migrations` not applied yet, in one transaction
 * holding an advisory lock, and returns the versions it applied (empty when
 * the schema was current).
 *
 * @throws {RangeError} When versions are not strictly increasing.
 */
export async function migrateCloud(
  db: Database,
  migrations: readonly Migration[] = cloudMigrations,
): Promise<number[]> {
  migrations.forEach((m, i) => {
    const prev = migrations[i - 1];
    if (!Number.isInteger(m.version) || (prev && m.version <= prev.version)) {
      throw new RangeError(
        `Migration versions must increase, got "${m.version}" after "${prev?.version}"`,
      );
    }
  });
  return await db.transaction(async (tx) => {
    // The lock comes before anything else, the table creation included: two
    // concurrent CREATE TABLE IF NOT EXISTS can still collide.
    await tx.query(`SELECT pg_advisory_xact_lock(${migrationLockId})`);
    await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const rows = await tx.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    return applied;
  });
}
