/**
 * `deno task fleet …`: the operator's command line, against the cloud's
 * database (DATABASE_URL, else PGlite in FORNAX_DATA, default ./data; a
 * PGlite folder is one process's, so stop `deno task cloud` first or use the
 * admin API). Secrets go to stdout alone, so scripts can capture them;
 * `--json` prints one JSON document.
 *
 * @example
 * ```sh
 * KEY=$(deno task fleet machine add vm-1 --location "Main St 1")
 * TOKEN=$(deno task fleet token add --role admin --name alice)
 * deno task fleet machines --json
 * ```
 */
import { parseArgs } from "node:util";
import { createRealClock } from "../clock/clock.ts";
import { MachineId } from "../protocol/define.ts";
import { MachineStatus } from "../protocol/entities.ts";
import { type Database, openDatabase } from "./db/database.ts";
import { migrateCloud } from "./db/migrations.ts";
import { addMachine } from "./db/machines.ts";
import { addToken, listTokens, revokeToken, Role } from "./admin/tokens.ts";
import { listMachines } from "./admin/fleet.ts";
import { listAlerts } from "./admin/alerts.ts";
import type { AlertView, MachineSummary } from "./admin/views.ts";
import { DataInUseError, type DataLock, lockDataDir } from "./data_lock.ts";
import { readCloudSettings, SettingsError } from "./settings.ts";

/** The usage text. */
export const usage = `Usage: deno task fleet <command> [options]

Commands:
  machine add ID [--name NAME] [--location ADDRESS] [--latitude N] [--longitude N]
                            register a machine; prints its API key (for /sync)
  token add --role admin|technician|viewer [--name NAME]
                            issue a bearer token for the admin API; prints it
  token list                list tokens (never the tokens themselves)
  token revoke TOKEN_ID     revoke a token
  machines [--status STATUS] [--location TEXT]
                            list machines with connectivity and open alerts
  alerts [--all] [--machine ID]
                            list open alerts (--all: resolved too)

Every command takes --json for one JSON document on stdout.
Environment: DATABASE_URL, or FORNAX_DATA (PGlite folder, default ./data); OFFLINE_AFTER_S.`;

/** Where the CLI writes. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** A command line refused: usage and exit code 2. */
class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Flags = Record<string, { type: "string" | "boolean" }>;

function parse(args: string[], flags: Flags, positionals: number) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...flags, json: { type: "boolean" } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(
      `Expected ${positionals} argument${positionals === 1 ? "" : "s"}, got ${
        parsed.positionals.length ? `"${parsed.positionals.join(" ")}"` : "none"
      }`,
    );
  }
  return {
    values: parsed.values as Record<string, string | boolean | undefined>,
    positionals: parsed.positionals,
    json: parsed.values.json === true,
  };
}

const str = (v: string | boolean | undefined) => (typeof v === "string" ? v : undefined);

function num(name: string, v: string | boolean | undefined): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${s}"`);
  return n;
}

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd())
    .join("\n");
}

const iso = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString());

function machineRows(machines: MachineSummary[]): string {
  return table(
    ["ID", "STATUS", "ONLINE", "LAST SEEN", "ALERTS", "CONFIG", "LOCATION"],
    machines.map((m) => [
      m.machineId,
      m.status,
      m.online ? "yes" : "no",
      iso(m.lastSeen),
      String(m.alerts),
      m.config.inSync
        ? "in sync"
        : `${m.config.reportedVersion ?? "-"} → ${m.config.desiredVersion}`,
      m.location.address ?? m.name ?? "",
    ]),
  );
}

function alertRows(alerts: AlertView[]): string {
  return table(
    ["ALERT", "MACHINE", "TYPE", "SEVERITY", "COUNT", "LAST SEEN", "STATE", "MESSAGE"],
    alerts.map((a) => [
      a.alertId,
      a.machineId,
      a.type,
      a.severity,
      String(a.count),
      iso(a.lastSeenAt),
      a.resolved ? "resolved" : a.muted ? "open, muted" : "open",
      a.message,
    ]),
  );
}

/** A parsed command, ready to run against the database. */
type Run = (db: Database, io: CliIo, offlineAfterMs: number) => Promise<void>;

const printJson = (io: CliIo, value: unknown) => io.out(JSON.stringify(value, null, 2));

/**
 * Parses the command line completely, so a bad one is refused before any
 * database is opened.
 *
 * @throws {UsageError} On an unknown command, flag or value.
 */
function parseCommand(args: string[]): Run {
  const [first, second, ...rest] = args;
  if (first === "machine" && second === "add") {
    const p = parse(rest, {
      name: { type: "string" },
      location: { type: "string" },
      latitude: { type: "string" },
      longitude: { type: "string" },
    }, 1);
    const machineId = p.positionals[0]!;
    if (!MachineId.safeParse(machineId).success || machineId === "alerts") {
      throw new UsageError(
        `Machine id must be 1-64 of A-Z a-z 0-9 _ - and not "alerts", got "${machineId}"`,
      );
    }
    const latitude = num("latitude", p.values.latitude);
    const longitude = num("longitude", p.values.longitude);
    const name = str(p.values.name);
    const location = str(p.values.location);
    return async (db, io) => {
      const known = await db.query<{ registered: boolean }>(
        "SELECT registered FROM machines WHERE machine_id = $1",
        [machineId],
      );
      const apiKey = await addMachine(db, machineId, {
        ...(name ? { name } : {}),
        ...(location ? { locationAddress: location } : {}),
        ...(latitude !== undefined ? { latitude } : {}),
        ...(longitude !== undefined ? { longitude } : {}),
      });
      if (known[0]?.registered) {
        io.err(`machine "${machineId}" was registered already: issued it an additional key`);
      }
      if (p.json) printJson(io, { machineId, apiKey });
      else io.out(apiKey);
    };
  }
  if (first === "token" && second === "add") {
    const p = parse(rest, { role: { type: "string" }, name: { type: "string" } }, 0);
    const role = Role.safeParse(p.values.role);
    if (!role.success) {
      throw new UsageError(
        `--role must be admin, technician or viewer, got "${p.values.role ?? ""}"`,
      );
    }
    const name = str(p.values.name);
    return async (db, io) => {
      const made = await addToken(db, { role: role.data, ...(name ? { name } : {}) });
      if (p.json) printJson(io, made);
      else io.out(made.token);
    };
  }
  if (first === "token" && second === "list") {
    const p = parse(rest, {}, 0);
    return async (db, io) => {
      const tokens = await listTokens(db);
      if (p.json) return printJson(io, { tokens });
      io.out(table(
        ["TOKEN ID", "NAME", "ROLE", "CREATED", "LAST USED", "REVOKED"],
        tokens.map((t) => [
          t.tokenId,
          t.name,
          t.role,
          iso(t.createdAtMs),
          iso(t.lastUsedAtMs),
          t.revoked ? "yes" : "no",
        ]),
      ));
    };
  }
  if (first === "token" && second === "revoke") {
    const p = parse(rest, {}, 1);
    const tokenId = p.positionals[0]!;
    return async (db, io) => {
      const revoked = await revokeToken(db, tokenId);
      if (p.json) return printJson(io, { tokenId, revoked });
      if (!revoked) throw new Error(`No unrevoked token "${tokenId}"`);
      io.out(`revoked ${tokenId}`);
    };
  }
  if (first === "machines") {
    const p = parse(args.slice(1), { status: { type: "string" }, location: { type: "string" } }, 0);
    const status = str(p.values.status);
    if (status !== undefined && !MachineStatus.safeParse(status).success) {
      throw new UsageError(
        `--status must be one of ${MachineStatus.options.join(", ")}, got "${status}"`,
      );
    }
    const location = str(p.values.location);
    return async (db, io, offlineAfterMs) => {
      const machines = await listMachines(
        db,
        { nowMs: createRealClock().now(), offlineAfterMs },
        { status, location, limit: 10_000 },
      );
      if (p.json) return printJson(io, { machines });
      io.out(machines.length ? machineRows(machines) : "no machines");
    };
  }
  if (first === "alerts") {
    const p = parse(args.slice(1), { all: { type: "boolean" }, machine: { type: "string" } }, 0);
    const machineId = str(p.values.machine);
    const all = p.values.all === true;
    return async (db, io) => {
      const alerts = await listAlerts(db, {
        machineId,
        resolved: all ? undefined : false,
        limit: 1000,
      });
      if (p.json) return printJson(io, { alerts });
      io.out(alerts.length ? alertRows(alerts) : "no alerts");
    };
  }
  throw new UsageError(
    first === undefined ? "No command given" : `Unknown command "${args.slice(0, 2).join(" ")}"`,
  );
}

/**
 * Runs the CLI on `args`; returns its exit code: 0 done, 1 failed, 2 bad
 * command line (usage printed).
 */
export async function fleetCli(
  args: string[],
  env: (name: string) => string | undefined,
  io: CliIo,
): Promise<number> {
  if (args.length === 1 && (args[0] === "help" || args[0] === "--help" || args[0] === "-h")) {
    io.out(usage);
    return 0;
  }
  let settings;
  try {
    settings = readCloudSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) {
      io.err(`fleet: ${err.message}`);
      return 2;
    }
    throw err;
  }
  let run: Run;
  try {
    run = parseCommand(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`fleet: ${err.message}\n\n${usage}`);
    return 2;
  }
  let lock: DataLock | null = null;
  if (!settings.databaseUrl) {
    try {
      lock = lockDataDir(settings.dataDir, `deno task fleet (pid ${Deno.pid})`);
    } catch (err) {
      if (err instanceof DataInUseError) {
        io.err(`fleet: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }
  let db: Database | null = null;
  try {
    db = await openDatabase({ url: settings.databaseUrl, dataDir: settings.dataDir });
    await migrateCloud(db);
    await run(db, io, settings.offlineAfterS * 1000);
    return 0;
  } catch (err) {
    io.err(`fleet: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await db?.close();
    lock?.release();
  }
}

/** Writes all of `text` and a newline (writeSync may write part of a buffer). */
function writeLine(to: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = new TextEncoder().encode(`${text}\n`);
  while (bytes.length) bytes = bytes.subarray(to.writeSync(bytes));
}

if (import.meta.main) {
  const code = await fleetCli(Deno.args, (name) => Deno.env.get(name), {
    out: (text) => writeLine(Deno.stdout, text),
    err: (text) => writeLine(Deno.stderr, text),
  });
  Deno.exit(code);
}
