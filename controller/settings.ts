/**
 * The controller's settings from the environment and flags, each with a
 * default that works out of the box; a bad value is refused naming it.
 */
import { parseArgs } from "node:util";
import { z } from "zod";
import { describeZodError, MachineId } from "../protocol/define.ts";

/** What a controller process can run: the actors, the HTTP API and the simulated plant. */
export const Part = z.enum([
  "oven",
  "carousel",
  "arm",
  "payment",
  "safety",
  "order",
  "supervisor",
  "sync",
  "api",
  "plant",
]);
/** What a controller process can run. */
export type Part = z.infer<typeof Part>;

/** Parts whose simulated hardware lives in the plant, so they must share its process. */
export const plantBound: readonly Part[] = ["oven", "carousel", "arm", "payment"];

/** The controller's settings. */
export const Settings = z.object({
  natsUrl: z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s/]+$/, "must look like nats://host:port"),
  machineId: MachineId,
  port: z.coerce.number().int().min(0).max(65535),
  techToken: z.string().min(8, "must be at least 8 characters").optional(),
  dataDir: z.string().min(1),
  speed: z.coerce.number().positive().max(100_000),
  only: z.array(Part).min(1),
});
/** The controller's settings. */
export type Settings = z.infer<typeof Settings>;

/** A setting was refused. */
export class SettingsError extends Error {
  /** Creates the error with a message naming the setting. */
  constructor(message: string) {
    super(message);
    this.name = "SettingsError";
  }
}

const envNames: Record<string, string> = {
  natsUrl: "NATS_URL",
  machineId: "MACHINE_ID",
  port: "PORT",
  techToken: "TECH_TOKEN",
  dataDir: "FORNAX_DATA",
  speed: "--speed",
  only: "--only",
};

/**
 * Reads settings from `args` and `env`.
 *
 * @throws {SettingsError} Naming the variable or flag whose value is bad.
 */
export function readSettings(args: string[], env: (name: string) => string | undefined): Settings {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: { speed: { type: "string" }, only: { type: "string" } },
      strict: true,
    }).values;
  } catch (err) {
    throw new SettingsError(err instanceof Error ? err.message : String(err));
  }
  const only = flags.only === undefined
    ? Part.options
    : flags.only.split(",").map((s) => s.trim()).filter(Boolean);
  const parsed = Settings.safeParse({
    natsUrl: env("NATS_URL") ?? "nats://127.0.0.1:4222",
    machineId: env("MACHINE_ID") ?? "m-001",
    port: env("PORT") ?? "8080",
    techToken: env("TECH_TOKEN") || undefined,
    dataDir: env("FORNAX_DATA") ?? "./data",
    speed: flags.speed ?? "1",
    only,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0]);
    const value = key === "only" ? flags.only : undefined;
    throw new SettingsError(
      `Bad ${envNames[key] ?? key}${value ? ` "${value}"` : ""}: ${describeZodError(parsed.error)}`,
    );
  }
  const s = parsed.data;
  const bound = s.only.filter((p) => plantBound.includes(p));
  if (bound.length > 0 && !s.only.includes("plant")) {
    throw new SettingsError(
      `Bad --only: ${
        bound.join(", ")
      } drive simulated hardware and need "plant" in the same process`,
    );
  }
  return s;
}
