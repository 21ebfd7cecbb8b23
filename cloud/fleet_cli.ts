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
      m.config.inSync ? "in sync" : `${m.config.reportedVersion ?? "-"} → ${m.config.desiredVersion}`,
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

async function command(db: Database, args: string[], io: CliIo, offlineAfterMs: number) {
  const [first, second, ...rest] = args;
  const json = (value: unknown) => io.out(JSON.stringify(value, null, 2));
  if (first === "machine" && second === "add") {
    const p = parse(rest, {
      name: { type: "string" },
      location: { type: "string" },
      latitude: { type: "string" },
      longitude: { type: "string" },
    }, 1);
    const machineId = p.positionals[0]!;
    const latitude = num("latitude", p.values.latitude);
    const longitude = num("longitude", p.values.longitude);
    const known = await db.query<{ registered: boolean }>(
      "SELECT registered FROM machines WHERE machine_id = $1",
      [machineId],
    );
    let apiKey: string;
    try {
      apiKey = await addMachine(db, machineId, {
        ...(str(p.values.name) ? { name: str(p.values.name)! } : {}),
        ...(str(p.values.location) ? { locationAddress: str(p.values.location)! } : {}),
        ...(latitude !== undefined ? { latitude } : {}),
        ...(longitude !== undefined ? { longitude } : {}),
      });
    } catch (err) {
      if (err instanceof RangeError) throw new UsageError(err.message);
      throw err;
    }
    if (known[0]?.registered) {
      io.err(`machine "${machineId}" was registered already: issued it an additional key`);
    }
    if (p.json) json({ machineId, apiKey });
    else io.out(apiKey);
    return;
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
    const made = await addToken(db, { role: role.data, ...(name ? { name } : {}) });
    if (p.json) json(made);
    else io.out(made.token);
    return;
  }
  if (first === "token" && second === "list") {
    const p = parse(rest, {}, 0);
    const tokens = await listTokens(db);
    if (p.json) return json({ tokens });
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
    return;
  }
  if (first === "token" && second === "revoke") {
    const p = parse(rest, {}, 1);
    const revoked = await revokeToken(db, p.positionals[0]!);
    if (p.json) return json({ tokenId: p.positionals[0], revoked });
    if (!revoked) throw new Error(`No unrevoked token "${p.positionals[0]}"`);
    io.out(`revoked ${p.positionals[0]}`);
    return;
  }
  if (first === "machines") {
    const p = parse(second === undefined ? [] : [second, ...rest], {
      status: { type: "string" },
      location: { type: "string" },
    }, 0);
    const status = str(p.values.status);
    if (status !== undefined && !MachineStatus.safeParse(status).success) {
      throw new UsageError(
        `--status must be one of ${MachineStatus.options.join(", ")}, got "${status}"`,
      );
    }
    const machines = await listMachines(
      db,
      { nowMs: createRealClock().now(), offlineAfterMs },
      { status, location: str(p.values.location), limit: 10_000 },
    );
    if (p.json) return json({ machines });
    io.out(machines.length ? machineRows(machines) : "no machines");
    return;
  }
  if (first === "alerts") {
    const p = parse(second === undefined ? [] : [second, ...rest], {
      all: { type: "boolean" },
      machine: { type: "string" },
    }, 0);
    const alerts = await listAlerts(db, {
      machineId: str(p.values.machine),
      resolved: p.values.all === true ? undefined : false,
      limit: 1000,
    });
    if (p.json) return json({ alerts });
    io.out(alerts.length ? alertRows(alerts) : "no alerts");
    return;
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
  // A bad command line is refused before any database is touched.
  const known = ["machine add", "token add", "token list", "token revoke"];
  const head = args.slice(0, 2).join(" ");
  if (!known.includes(head) && args[0] !== "machines" && args[0] !== "alerts") {
    io.err(`fleet: ${args.length ? `Unknown command "${head}"` : "No command given"}\n\n${usage}`);
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
    await command(db, args, io, settings.offlineAfterS * 1000);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`fleet: ${err.message}\n\n${usage}`);
      return 2;
    }
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
