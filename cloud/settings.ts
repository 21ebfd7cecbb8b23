/**
 * The cloud's settings from the environment, each with a default that works
 * out of the box; a bad value is refused naming its variable.
 */
import { z } from "zod";
import { SettingsError } from "../controller/settings.ts";

export { SettingsError } from "../controller/settings.ts";

/** The cloud's settings. */
export const CloudSettings = z.object({
  /** Postgres; when absent, PGlite in `dataDir`. */
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\/\S+$/, "must look like postgres://…")
    .optional(),
  dataDir: z.string().min(1),
  natsUrl: z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s/]+$/, "must look like nats://host:port"),
  hostname: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535),
  /** Ingestion workers sharing the durable consumer. */
  ingestWorkers: z.coerce.number().int().min(1).max(64),
  /** Seconds of silence after which a machine is offline. */
  offlineAfterS: z.coerce.number().int().min(10).max(7 * 24 * 3600),
  /** The first subject token of the fleet (`fleet`): another root is another fleet on one NATS. */
  fleetRoot: z.string().regex(/^[a-z][a-z0-9_]{0,30}$/, "must be 1-31 of a-z 0-9 _ (letter first)"),
});
/** The cloud's settings. */
export type CloudSettings = z.infer<typeof CloudSettings>;

const envNames: Record<keyof CloudSettings, string> = {
  databaseUrl: "DATABASE_URL",
  dataDir: "FORNAX_DATA",
  natsUrl: "NATS_URL",
  hostname: "HOST",
  port: "PORT",
  ingestWorkers: "INGEST_WORKERS",
  offlineAfterS: "OFFLINE_AFTER_S",
  fleetRoot: "FLEET_ROOT",
};

/**
 * Reads the settings from `env`.
 *
 * @throws {SettingsError} Naming the variable whose value is bad.
 */
export function readCloudSettings(env: (name: string) => string | undefined): CloudSettings {
  const raw = {
    databaseUrl: env("DATABASE_URL") || undefined,
    dataDir: env("FORNAX_DATA") ?? "./data",
    natsUrl: env("NATS_URL") ?? "nats://127.0.0.1:4222",
    hostname: env("HOST") ?? "0.0.0.0",
    port: env("PORT") ?? "8090",
    ingestWorkers: env("INGEST_WORKERS") ?? "2",
    offlineAfterS: env("OFFLINE_AFTER_S") ?? "600",
    fleetRoot: env("FLEET_ROOT") ?? "fleet",
  };
  const parsed = CloudSettings.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]) as keyof CloudSettings;
    // A database URL may hold a password: never echoed.
    const shown = key === "databaseUrl" ? "" : ` "${raw[key]}"`;
    throw new SettingsError(`Bad ${envNames[key]}${shown}: ${issue.message}`);
  }
  return parsed.data;
}
