/**
 * The fleet as operators see it: queries the admin API and the CLI share,
 * people's tokens, alerts, the audit and maintenance logs, uptime, analytics.
 *
 * @example
 * ```ts
 * const { token } = await addToken(db, { role: "viewer" });
 * const machines = await listMachines(db, { nowMs, offlineAfterMs: defaultOfflineAfterMs });
 * ```
 */
export * from "./views.ts";
export {
  addToken,
  type AddTokenOptions,
  checkToken,
  countTokens,
  listTokens,
  newToken,
  revokeToken,
  Role,
  roleAllows,
  type TokenIdentity,
  type TokenInfo,
} from "./tokens.ts";
export {
  type AlertFilter,
  type CloudAlert,
  fleetAlertOf,
  listAlerts,
  publishAlerts,
  raiseCloudAlert,
  resolveAlertById,
  resolveOpenAlert,
  type ResolveOutcome,
} from "./alerts.ts";
export {
  configShadow,
  type Connectivity,
  defaultOfflineAfterMs,
  itemNames,
  listMachines,
  lowInventory,
  machineDetail,
  machineExists,
  type MachineFilter,
  machineInventory,
} from "./fleet.ts";
export { analytics, type AnalyticsQuery } from "./analytics.ts";
export { uptimeByMachine, type UptimeFacts, uptimePercent } from "./uptime.ts";
export {
  addMaintenanceLog,
  completeMaintenanceLog,
  listAudit,
  listMaintenanceLogs,
  type MaintenanceType,
  recordAudit,
} from "./audit.ts";
