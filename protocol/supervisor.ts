/** The supervisor: machine status, maintenance mode, restarts, aggregated alerts. */
import { z } from "zod";
import { Component, defineCommand, defineEvent } from "./define.ts";
import { Alert, MachineStatus } from "./entities.ts";

/** What the supervisor knows of one component. */
export const ComponentHealth = z.object({
  state: z.string(),
  alive: z.boolean(),
  lastSeen: z.number().nullable(),
  restarts: z.number().int(),
});

/** The machine as the supervisor sees it. */
export const SupervisorStatus = z.object({
  status: MachineStatus,
  reason: z.string().nullable(),
  cashOnly: z.boolean(),
  maintenance: z.boolean(),
  components: z.record(Component, ComponentHealth),
  alerts: z.array(Alert),
});
/** The machine as the supervisor sees it. */
export type SupervisorStatus = z.infer<typeof SupervisorStatus>;

/** Reports the machine's status. */
export const status = defineCommand("supervisor", "status", {}, SupervisorStatus);

/** Enters or leaves maintenance mode; in-flight orders finish. */
export const maintenance = defineCommand("supervisor", "maintenance", {
  enable: z.boolean(),
  reason: z.string().min(1).max(200),
}, SupervisorStatus);

/** Resolves an alert by id; NOT_FOUND when unknown. */
export const resolveAlert = defineCommand("supervisor", "resolve_alert", {
  alertId: z.string(),
}, Alert);

/** The machine status changed; actors that take orders obey it. */
export const machine = defineEvent("supervisor", "machine", {
  status: MachineStatus,
  reason: z.string().nullable(),
  cashOnly: z.boolean(),
  maintenance: z.boolean(),
});
