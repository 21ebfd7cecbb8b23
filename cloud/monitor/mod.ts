/**
 * The cloud's monitoring jobs: connectivity, duration conditions, anomaly
 * detection (seed §6.6) and predictive restock (seed §6.2).
 *
 * @example
 * ```ts
 * const monitor = startMonitor({ db, nc, clock, log });
 * await monitor.run("restock");
 * await monitor.stop();
 * ```
 */
export {
  type JobResult,
  listMonitorRuns,
  type Monitor,
  type MonitorJob,
  monitorJobs,
  type MonitorOptions,
  type MonitorRun,
  msUntilHourUtc,
  startMonitor,
  type Trigger,
} from "./monitor.ts";
export { type ConnectivityResult, offlineAlertType, sweepConnectivity } from "./connectivity.ts";
export {
  type Breach,
  type ConditionsResult,
  defaultConditions,
  type DurationCondition,
  storageAbove5CFor10Min,
  sweepConditions,
} from "./conditions.ts";
export {
  type Anomaly,
  anomalyAlertType,
  type AnomalyThresholds,
  type AnomalyType,
  defaultThresholds,
  detectAnomalies,
  raiseAnomalyAlerts,
} from "./anomalies.ts";
export {
  defaultRestockOptions,
  predictRestock,
  raiseRestockAlerts,
  type RestockOptions,
  type RestockRecommendation,
} from "./restock.ts";
