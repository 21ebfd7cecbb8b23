/**
 * The sync actor: the machine's outbox of fleet events and its link to the
 * cloud's JetStream (`protocol/fleet.ts`).
 */
import { z } from "zod";
import { defineCommand, defineEvent } from "./define.ts";
import { MachineConfig } from "./config.ts";

/** What the sync actor reports of itself. */
export const SyncStatus = z.object({
  /** The sender's state: idle, sending or waiting (backing off after a failure). */
  state: z.string(),
  /** False from a failed send until the next acknowledged one. */
  online: z.boolean(),
  /** Fleet events written and not yet acknowledged by JetStream. */
  outboxDepth: z.number().int().nonnegative(),
  /** Clock ms of the oldest event waiting, or null when the outbox is empty. */
  oldestQueuedTs: z.number().int().nullable(),
  /** Clock ms of the last acknowledged publish, or null when none yet. */
  lastAckTs: z.number().int().nullable(),
  /** Why the last send failed, or null after a success. */
  lastError: z.string().nullable(),
  /** Events acknowledged since the journal was created. */
  sentTotal: z.number().int().nonnegative(),
  /** Temperature samples dropped because the outbox was full (orders and money never are). */
  droppedTelemetry: z.number().int().nonnegative(),
});
/** What the sync actor reports of itself. */
export type SyncStatus = z.infer<typeof SyncStatus>;

/** Reports the outbox and the link to the cloud. */
export const status = defineCommand("sync", "status", {}, SyncStatus);

/**
 * Applies a new machine configuration (prices, menu, accepted cash) pushed by
 * the cloud. Atomic: every later read sees all of it or none; a version the
 * machine already runs is not applied again.
 */
export const applyConfig = defineCommand(
  "sync",
  "apply_config",
  { config: MachineConfig },
  z.object({ version: z.string(), applied: z.boolean() }),
);

/** The machine now runs `version` (every process of it reloads). */
export const configApplied = defineEvent("sync", "config", { version: z.string() });
