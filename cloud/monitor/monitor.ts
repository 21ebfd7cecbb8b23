/**
 * The monitor: the cloud's jobs on a schedule of the injected Clock, and on
 * demand. Connectivity and duration conditions are swept every 30 s,
 * anomalies hourly (seed §6.6), the restock forecast daily at 03:00 UTC
 * (seed §6.2). Runs of one job never overlap (a run on demand waits for the
 * one in progress); a failed run is logged and the schedule goes on. Alerts
 * that open go to `fleet.alerts.<severity>`; runs of the hourly and daily jobs,
 * and every run on demand, are kept in `monitor_runs`.
 *
 * @example
 * ```ts
 * const monitor = startMonitor({ db, nc, clock, log });
 * const result = await monitor.run("anomalies", "demand");
 * await monitor.stop();
 * ```
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type Clock, every, type TimerHandle } from "../../clock/clock.ts";
import { createCryptoRandom, type Random } from "../../random/random.ts";
import type { Logger } from "../../log/log.ts";
import { fleet, type FleetNames } from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { publishAlerts } from "../admin/alerts.ts";
import { defaultOfflineAfterMs } from "../admin/fleet.ts";
import { at, ms } from "../admin/sql.ts";
import { type ConnectivityResult, sweepConnectivity } from "./connectivity.ts";
import {
  type ConditionsResult,
  defaultConditions,
  type DurationCondition,
  sweepConditions,
} from "./conditions.ts";
import {
  type Anomaly,
  type AnomalyThresholds,
  defaultThresholds,
  detectAnomalies,
  raiseAnomalyAlerts,
} from "./anomalies.ts";
import {
  defaultRestockOptions,
  predictRestock,
  raiseRestockAlerts,
  type RestockOptions,
  type RestockRecommendation,
} from "./restock.ts";

/** The monitor's jobs. */
export const monitorJobs = ["connectivity", "conditions", "anomalies", "restock"] as const;
/** A job of the monitor. */
export type MonitorJob = (typeof monitorJobs)[number];

/** What a job found. */
export type JobResult =
  | { job: "connectivity"; result: ConnectivityResult }
  | { job: "conditions"; result: ConditionsResult }
  | { job: "anomalies"; result: { anomalies: Anomaly[]; alertsOpened: number } }
  | { job: "restock"; result: { recommendations: RestockRecommendation[]; alertsOpened: number } };

/** Why a job ran. */
export type Trigger = "schedule" | "demand";

/** A run as `monitor_runs` keeps it. */
export interface MonitorRun {
  runId: string;
  job: MonitorJob;
  trigger: Trigger;
  startedAt: number;
  finishedAt: number;
  result: unknown;
}

/** Options of {@linkcode startMonitor}. */
export interface MonitorOptions {
  db: Database;
  /** Where alerts go; null publishes nothing. */
  nc: NatsConnection | null;
  names?: FleetNames;
  clock: Clock;
  log: Logger;
  random?: Random;
  /** Quiet this long is offline (default 10 min). */
  offlineAfterMs?: number;
  /** Period of the connectivity and conditions sweeps (default 30 s). */
  sweepMs?: number;
  /** Period of anomaly detection (default 1 h). */
  anomaliesMs?: number;
  /** UTC hour of the daily restock forecast (default 3). */
  restockHourUtc?: number;
  conditions?: readonly DurationCondition[];
  thresholds?: AnomalyThresholds;
  restock?: Partial<RestockOptions>;
  /** Run jobs on the schedule (default true); false runs them on demand only. */
  schedule?: boolean;
}

/** A running monitor. */
export interface Monitor {
  /** Runs `job` now (after a run of it in progress) and returns what it found. */
  run(job: MonitorJob, trigger?: Trigger): Promise<JobResult>;
  /** Stops the schedule and waits for runs in progress. */
  stop(): Promise<void>;
}

const hourMs = 60 * 60_000;
const dayMs = 24 * hourMs;

/** Clock ms from `nowMs` to the next `hour`:00 UTC. */
export function msUntilHourUtc(nowMs: number, hour: number): number {
  const dayStart = Math.floor(nowMs / dayMs) * dayMs;
  let next = dayStart + hour * hourMs;
  if (next <= nowMs) next += dayMs;
  return next - nowMs;
}

/** Starts the monitor; see the module doc. */
export function startMonitor(options: MonitorOptions): Monitor {
  const { db, clock, log } = options;
  const names = options.names ?? fleet;
  const random = options.random ?? createCryptoRandom();
  const offlineAfterMs = options.offlineAfterMs ?? defaultOfflineAfterMs;
  const chains = new Map<MonitorJob, Promise<unknown>>();
  const busy = new Set<MonitorJob>();
  const stops: (() => void)[] = [];
  let stopped = false;

  const execute = async (job: MonitorJob): Promise<JobResult> => {
    const nowMs = clock.now();
    switch (job) {
      case "connectivity": {
        const result = await sweepConnectivity(db, { nowMs, offlineAfterMs, random });
        publishAlerts(options.nc, names, result.alerts, log);
        return { job, result };
      }
      case "conditions": {
        const result = await sweepConditions(db, {
          nowMs,
          conditions: options.conditions ?? defaultConditions,
          random,
        });
        publishAlerts(options.nc, names, result.alerts, log);
        return { job, result };
      }
      case "anomalies": {
        const anomalies = await detectAnomalies(db, {
          nowMs,
          thresholds: options.thresholds ?? defaultThresholds,
        });
        const opened = await raiseAnomalyAlerts(db, anomalies, nowMs, random);
        publishAlerts(options.nc, names, opened, log);
        return { job, result: { anomalies, alertsOpened: opened.length } };
      }
      case "restock": {
        const recommendations = await predictRestock(db, {
          nowMs,
          ...defaultRestockOptions,
          ...options.restock,
        });
        const opened = await raiseRestockAlerts(db, recommendations, nowMs, random);
        publishAlerts(options.nc, names, opened, log);
        return { job, result: { recommendations, alertsOpened: opened.length } };
      }
    }
  };

  const record = async (job: MonitorJob, trigger: Trigger, startMs: number, r: JobResult) => {
    const sweep = job === "connectivity" || job === "conditions";
    const quiet = r.job === "connectivity"
      ? !r.result.wentOffline.length && !r.result.cameBack.length
      : r.job === "conditions"
      ? !r.result.alerted.length
      : false;
    // Sweeps every 30 s would bury the log: only the ones that changed something.
    if (trigger === "schedule" && sweep && quiet) return;
    await db.query(
      `INSERT INTO monitor_runs (run_id, job, trigger, started_at, finished_at, result)
       VALUES ($1, $2, $3, ${at("$4")}, ${at("$5")}, $6::text::jsonb)`,
      [random.uuid(), job, trigger, startMs, clock.now(), JSON.stringify(r.result)],
    );
  };

  const run = (job: MonitorJob, trigger: Trigger = "demand"): Promise<JobResult> => {
    const previous = chains.get(job) ?? Promise.resolve();
    busy.add(job);
    const next = previous.catch(() => {}).then(async () => {
      const startMs = clock.now();
      const r = await execute(job);
      await record(job, trigger, startMs, r);
      return r;
    });
    const settled = next.then(() => {}, () => {});
    settled.then(() => {
      if (chains.get(job) === settled) busy.delete(job);
    });
    chains.set(job, settled);
    return next;
  };

  const scheduled = (job: MonitorJob) => () => {
    // A slow run (Postgres away) is not joined by more: the next tick retries.
    if (stopped || busy.has(job)) return;
    run(job, "schedule").catch((err) => {
      log.log("warn", "monitor job failed", { job, err: String(err) });
    });
  };

  if (options.schedule ?? true) {
    const sweepMs = options.sweepMs ?? 30_000;
    stops.push(every(clock, sweepMs, scheduled("connectivity")));
    stops.push(every(clock, sweepMs, scheduled("conditions")));
    stops.push(every(clock, options.anomaliesMs ?? hourMs, scheduled("anomalies")));
    const hour = options.restockHourUtc ?? 3;
    let handle: TimerHandle;
    const daily = () => {
      scheduled("restock")();
      if (!stopped) handle = clock.setTimeout(daily, msUntilHourUtc(clock.now(), hour));
    };
    handle = clock.setTimeout(daily, msUntilHourUtc(clock.now(), hour));
    stops.push(() => clock.clearTimeout(handle));
  }

  return {
    run,
    async stop() {
      stopped = true;
      for (const s of stops) s();
      await Promise.all([...chains.values()]);
    },
  };
}

/** The latest runs of `job` (or of every job), newest first. */
export async function listMonitorRuns(
  db: Database,
  options: { job?: MonitorJob | undefined; limit?: number } = {},
): Promise<MonitorRun[]> {
  const rows = await db.query<{
    run_id: string;
    job: MonitorJob;
    trigger: Trigger;
    started_ms: number;
    finished_ms: number;
    result: unknown;
  }>(
    `SELECT run_id, job, trigger, ${ms("started_at")} AS started_ms,
            ${ms("finished_at")} AS finished_ms, result
       FROM monitor_runs ${options.job === undefined ? "" : "WHERE job = $2"}
      ORDER BY started_at DESC, run_id LIMIT $1`,
    options.job === undefined ? [options.limit ?? 20] : [options.limit ?? 20, options.job],
  );
  return rows.map((r) => ({
    runId: r.run_id,
    job: r.job,
    trigger: r.trigger,
    startedAt: Math.round(r.started_ms),
    finishedAt: Math.round(r.finished_ms),
    result: r.result,
  }));
}
