/**
 * The oven as an XState machine: the heat target, cooking sessions (seed 003
 * §3.8), the smart preheat policy (§6.3), watches on the samples and latched
 * faults. The PID runs in the host's control loop (`control_loop.ts`), which
 * steers toward `heatTargetC` every 100 ms and hands the machine a sample when
 * {@linkcode sampleIsDue} says so. Side effects (heater writes, events) are
 * placeholders that the host provides, so the machine itself is pure and
 * replayable.
 */
import {
  assign,
  cancel,
  enqueueActions,
  fromCallback,
  raise,
  setup,
  type SnapshotFrom,
} from "xstate";
import type { CookingSession } from "../../protocol/entities.ts";
import type { OvenFault, OvenState } from "../../protocol/oven.ts";
import type { z } from "zod";
import {
  defaultPreheatTargets,
  type ManualTarget,
  policyTargetC,
  standbyTargetC,
} from "./policy.ts";

/** Why the oven faulted. */
export type OvenFaultCode = z.infer<typeof OvenFault>["code"];

/** Thresholds and periods of the oven; every one has a default in {@linkcode defaultOvenLimits}. */
export interface OvenLimits {
  /** Readings outside [readingMinC, readingMaxC] mean a broken thermocouple. */
  readingMinC: number;
  readingMaxC: number;
  /** Absolute limit: above it the oven faults whatever its target. */
  maxC: number;
  /** Running this far above target (after having been below it) is a runaway. */
  overTargetC: number;
  /** With the heater saturated, the oven must rise `slowMinRiseC` within `slowWindowMs`. */
  slowWindowMs: number;
  slowMinRiseC: number;
  /** Within this of target the oven counts as holding and a session bakes (less `sensorErrorC`). */
  bandC: number;
  /**
   * How far a reading may be from the true temperature (thermocouple and
   * amplifier): a bake counts only while the reading is this far inside the
   * band, so a reading that errs at the band's edge credits no time the pizza
   * spent outside it.
   */
  sensorErrorC: number;
  /** Holding ends only beyond this, so the state does not chatter at the band's edge. */
  holdExitBandC: number;
  /** Without a target the oven is `off` below this and `cooling` above it. */
  coldC: number;
  /** Heat-up rate assumed for a session's estimated completion. */
  expectedHeatRateCPerS: number;
  /** Preheat policy temperatures. */
  activeTargetC: number;
  standbyTargetC: number;
  /** The policy is re-evaluated this often, besides on every queue event. */
  policyPeriodMs: number;
  /** Temperature events are at least this far apart... */
  telemetryPeriodMs: number;
  /** ...and come that often only while the temperature moves by this much... */
  telemetryDeadbandC: number;
  /** ...or at least this often when it holds still. */
  telemetryKeepaliveMs: number;
  /** Progress events of a running session come this often. */
  progressPeriodMs: number;
  /** The control loop hands the machine a sample at least this often. */
  samplePeriodMs: number;
  /** No thermocouple sample for this long is a fault (a hung PLC). */
  sensorSilenceMs: number;
  /** How many ended sessions are kept for idempotent repeats. */
  sessionHistory: number;
}

/** The oven's default limits (the figures). */
export const defaultOvenLimits: OvenLimits = {
  readingMinC: -20,
  readingMaxC: 400,
  maxC: 290,
  overTargetC: 40,
  slowWindowMs: 60_000,
  slowMinRiseC: 5,
  bandC: 10,
  sensorErrorC: 1,
  holdExitBandC: 15,
  coldC: 50,
  expectedHeatRateCPerS: 0.6,
  activeTargetC: defaultPreheatTargets.activeC,
  standbyTargetC: defaultPreheatTargets.standbyC,
  policyPeriodMs: 60_000,
  telemetryPeriodMs: 1_000,
  telemetryDeadbandC: 1,
  telemetryKeepaliveMs: 10_000,
  progressPeriodMs: 5_000,
  samplePeriodMs: 5_000,
  sensorSilenceMs: 20_000,
  sessionHistory: 100,
};

/** A running session and what the machine needs to finish it. */
export interface ActiveSession {
  record: CookingSession;
  pizzaId: string;
  cookTimeMs: number;
  /** Baking time served so far: only time spent within the band counts. */
  bakedMs: number;
}

/** A latched fault and the order whose session it ended. */
export interface LatchedFault {
  code: OvenFaultCode;
  message: string;
  at: number;
  activeOrderId: string | null;
}

/** What the oven machine remembers. */
export interface OvenContext {
  machineId: string;
  utcOffsetMin: number;
  limits: OvenLimits;
  /** Last finite reading; see `readingInRange` for whether it is trustworthy. */
  temperatureC: number;
  readingInRange: boolean;
  /** Clock time of the last sample; null before the first. */
  lastSampleMs: number | null;
  /** The control loop's heater output at the last sample. */
  heaterPct: number;
  queueLength: number;
  /** What the policy (or a technician) wants when no session runs. */
  standbyTargetC: number;
  manual: ManualTarget | null;
  policyEvaluatedAtMs: number | null;
  /** Start of the current window in which the heater has been saturated. */
  saturatedSince: { atMs: number; tempC: number } | null;
  /** The target the oven has been at or below target + overTargetC for. */
  runawayArmedForC: number | null;
  session: ActiveSession | null;
  /** Ended sessions, oldest first, at most `limits.sessionHistory`. */
  history: CookingSession[];
  fault: LatchedFault | null;
  safetyTripped: boolean;
  lastTemperatureEventMs: number | null;
  lastTemperatureEventC: number | null;
  lastProgressEventMs: number | null;
}

/** What the host passes to the machine. */
export interface OvenInput {
  machineId: string;
  utcOffsetMin: number;
  limits?: Partial<OvenLimits>;
}

/** Events the oven machine handles; `nowMs` is the host clock's time. */
export type OvenEvent =
  | { type: "SAMPLE"; temperatureC: number; heaterPct: number; nowMs: number; error?: string }
  | { type: "SENSOR_SILENT" }
  | {
    type: "COOK";
    orderId: string;
    pizzaId: string;
    targetC: number;
    cookTimeMs: number;
    sessionId: string;
    nowMs: number;
  }
  | { type: "ABORT"; orderId: string; nowMs: number }
  | { type: "PREHEAT"; targetC: number; nowMs: number }
  | { type: "RESET"; nowMs: number }
  | { type: "QUEUE"; length: number; nowMs: number }
  | { type: "SAFETY_TRIPPED"; nowMs: number }
  | { type: "SAFETY_STATE"; tripped: boolean; nowMs: number };

type IdleState = "off" | "preheating" | "holding" | "cooling";
const idleStates: IdleState[] = ["off", "preheating", "holding", "cooling"];
type Sample = Extract<OvenEvent, { type: "SAMPLE" }>;

/** The temperature the controller aims at now: 0 in fault, the session's, or standby. */
export function heatTargetC(context: OvenContext): number {
  if (context.fault) return 0;
  return context.session ? context.session.record.targetTemperatureC : context.standbyTargetC;
}

/** Which idle state the oven belongs in, with hysteresis when it is already `from`. */
export function idleStateFor(context: OvenContext, from: IdleState | null): IdleState {
  const { limits, temperatureC } = context;
  const targetC = heatTargetC(context);
  if (targetC <= 0) {
    const coldC = from === "off" ? limits.coldC + limits.bandC : limits.coldC;
    return temperatureC > coldC ? "cooling" : "off";
  }
  const errorC = temperatureC - targetC;
  const bandC = from === "holding" ? limits.holdExitBandC : limits.bandC;
  if (Math.abs(errorC) <= bandC) return "holding";
  return errorC < 0 ? "preheating" : "cooling";
}

/** How far from target a reading may be for a session to bake: the band less the sensor's error. */
function bakeBandC(limits: OvenLimits): number {
  return limits.bandC - limits.sensorErrorC;
}

/** Whether a session bakes at the reading `temperatureC`. */
function inBand(context: OvenContext, temperatureC: number): boolean {
  return Math.abs(temperatureC - heatTargetC(context)) <= bakeBandC(context.limits);
}

function readingInRange(limits: OvenLimits, temperatureC: number): boolean {
  return Number.isFinite(temperatureC) && temperatureC >= limits.readingMinC &&
    temperatureC <= limits.readingMaxC;
}

function heaterSaturated(heaterPct: number): boolean {
  return heaterPct >= 99.5;
}

function sampleOf(event: OvenEvent): Sample | null {
  return event.type === "SAMPLE" ? event : null;
}

function nowOf(event: OvenEvent, context: OvenContext): number {
  return "nowMs" in event ? event.nowMs : context.lastSampleMs ?? 0;
}

/** The policy's standby target at `nowMs`, with a technician's override applied. */
function evaluatePolicy(
  context: OvenContext,
  nowMs: number,
): Pick<OvenContext, "standbyTargetC" | "manual" | "policyEvaluatedAtMs"> {
  const policyC = policyTargetC(context.queueLength, nowMs, context.utcOffsetMin, {
    activeC: context.limits.activeTargetC,
    standbyC: context.limits.standbyTargetC,
  });
  const { targetC, manual } = standbyTargetC(policyC, context.manual);
  return { standbyTargetC: targetC, manual, policyEvaluatedAtMs: nowMs };
}

/** A session's public record as of `nowMs` and `temperatureC`. */
function sessionRecord(
  context: OvenContext,
  session: ActiveSession,
  nowMs: number,
): CookingSession {
  const remainingMs = Math.max(0, Math.ceil(session.cookTimeMs - session.bakedMs));
  const { record } = session;
  const toBandC = record.targetTemperatureC - bakeBandC(context.limits) - context.temperatureC;
  const heatUpMs = record.status === "HEATING" && toBandC > 0
    ? Math.ceil(toBandC / context.limits.expectedHeatRateCPerS * 1000)
    : 0;
  return {
    ...record,
    currentTemperatureC: context.temperatureC,
    timeRemainingMs: remainingMs,
    estimatedCompletion: Math.round(nowMs + heatUpMs + remainingMs),
  };
}

/** One step on a sample: policy, heater output, watches and baking time. */
function controlStep(context: OvenContext, sample: Sample): Partial<OvenContext> {
  const { limits } = context;
  const nowMs = sample.nowMs;
  const policyDue = context.policyEvaluatedAtMs === null ||
    nowMs - context.policyEvaluatedAtMs >= limits.policyPeriodMs;
  const next: OvenContext = {
    ...context,
    ...(policyDue ? evaluatePolicy(context, nowMs) : {}),
  };
  const previousC = context.temperatureC;
  next.temperatureC = sample.temperatureC;
  next.readingInRange = true;
  next.lastSampleMs = nowMs;

  const targetC = heatTargetC(next);
  next.heaterPct = targetC > 0 ? sample.heaterPct : 0;

  // The heater output held over the last interval decides whether it was saturated.
  const heating = targetC > sample.temperatureC && heaterSaturated(context.heaterPct);
  if (!heating) next.saturatedSince = null;
  else if (
    context.saturatedSince === null || nowMs - context.saturatedSince.atMs >= limits.slowWindowMs
  ) next.saturatedSince = { atMs: nowMs, tempC: sample.temperatureC };

  next.runawayArmedForC = targetC > 0 &&
      (context.runawayArmedForC === targetC ||
        sample.temperatureC <= targetC + limits.overTargetC)
    ? targetC
    : null;

  if (context.session) {
    // Conservative: an interval counts only when it began and ended within the band,
    // and never from before the session began (the previous sample may be older).
    const baking = context.session.record.status === "COOKING" &&
      inBand(next, previousC) && inBand(next, sample.temperatureC);
    const sinceMs = Math.max(context.lastSampleMs ?? nowMs, context.session.record.startedAt);
    const session = {
      ...context.session,
      bakedMs: context.session.bakedMs + (baking ? Math.max(0, nowMs - sinceMs) : 0),
    };
    session.record = sessionRecord(next, session, nowMs);
    next.session = session;
  }
  return next;
}

/** A temperature event is due: the first, a move beyond the deadband, or the keepalive. */
function temperatureEventDue(context: OvenContext, sample: Sample): boolean {
  const { limits, lastTemperatureEventMs: lastMs, lastTemperatureEventC: lastC } = context;
  if (lastMs === null || lastC === null) return true;
  const sinceMs = sample.nowMs - lastMs;
  if (sinceMs >= limits.telemetryKeepaliveMs) return true;
  return sinceMs >= limits.telemetryPeriodMs &&
    !(Math.abs(sample.temperatureC - lastC) < limits.telemetryDeadbandC);
}

/**
 * Whether the machine must see the control loop's sample at `nowMs` now rather
 * than at the next `samplePeriodMs`: a bad or dangerous reading, the reading
 * entering or leaving the band (baking time counts only within it), or the
 * bake finishing.
 */
export function sampleIsDue(
  context: OvenContext,
  sample: { temperatureC: number; previousC: number; nowMs: number; error?: string },
): boolean {
  const { limits } = context;
  const { temperatureC: t, nowMs } = sample;
  const lastMs = context.lastSampleMs;
  if (lastMs === null || nowMs - lastMs >= limits.samplePeriodMs) return true;
  if (sample.error !== undefined || !readingInRange(limits, t)) return true;
  const targetC = heatTargetC(context);
  if (t > limits.maxC || (targetC > 0 && t > targetC + limits.overTargetC)) return true;
  if (inBand(context, t) !== inBand(context, sample.previousC)) return true;
  const session = context.session;
  if (!session) return false;
  if (session.record.status === "HEATING") return inBand(context, t);
  return nowMs - lastMs >= session.cookTimeMs - session.bakedMs;
}

/** The session's end as `status` at `nowMs`, moved into the history. */
function endSession(
  context: OvenContext,
  status: "COMPLETE" | "ERROR",
  nowMs: number,
): Pick<OvenContext, "session" | "history"> {
  if (!context.session) return { session: null, history: context.history };
  const record: CookingSession = {
    ...sessionRecord(context, context.session, nowMs),
    status,
    completedAt: nowMs,
    estimatedCompletion: nowMs,
    ...(status === "COMPLETE" ? { timeRemainingMs: 0 } : {}),
  };
  const history = [...context.history, record].slice(-context.limits.sessionHistory);
  return { session: null, history };
}

/** The session (running or ended) of `orderId`, if the oven knows it. */
export function sessionOf(context: OvenContext, orderId: string): CookingSession | null {
  if (context.session?.record.orderId === orderId) return context.session.record;
  return context.history.findLast((s) => s.orderId === orderId) ?? null;
}

/** The session that ended last. */
export function lastEndedSession(context: OvenContext): CookingSession | null {
  return context.history.at(-1) ?? null;
}

function faultMessage(code: OvenFaultCode, context: OvenContext, event: OvenEvent): string {
  const sample = sampleOf(event);
  const readingC = sample ? sample.temperatureC : context.temperatureC;
  switch (code) {
    case "THERMOCOUPLE_RANGE":
      if (event.type === "SENSOR_SILENT") {
        return `No thermocouple reading for ${context.limits.sensorSilenceMs} ms`;
      }
      if (sample?.error) return `Thermocouple read failed: ${sample.error}`;
      return `Thermocouple reads ${readingC} °C, outside ${context.limits.readingMinC}..${context.limits.readingMaxC} °C`;
    case "OVER_TEMPERATURE":
      return `Oven at ${
        readingC.toFixed(1)
      } °C, above its limit (${context.limits.maxC} °C or target ${
        heatTargetC(context)
      } + ${context.limits.overTargetC} °C)`;
    case "HEATING_TOO_SLOW": {
      const since = context.saturatedSince;
      const riseC = since ? readingC - since.tempC : 0;
      return `Heater at 100 % but the oven rose only ${riseC.toFixed(1)} °C in ${
        since ? (sample?.nowMs ?? 0) - since.atMs : 0
      } ms (need ${context.limits.slowMinRiseC} °C in ${context.limits.slowWindowMs} ms)`;
    }
    case "POWER_CUT":
      return "Safety tripped: heater power is cut";
  }
}

/** Latches fault `code`, noting the session it ends and the sample that caused it. */
function recordFault(code: OvenFaultCode) {
  return assign<OvenContext, OvenEvent, undefined, OvenEvent, never>(({ context, event }) => {
    const sample = sampleOf(event);
    return {
      fault: {
        code,
        message: faultMessage(code, context, event),
        at: nowOf(event, context),
        activeOrderId: context.session?.record.orderId ?? null,
      },
      ...(sample
        ? {
          temperatureC: Number.isFinite(sample.temperatureC)
            ? sample.temperatureC
            : context.temperatureC,
          readingInRange: readingInRange(context.limits, sample.temperatureC),
          lastSampleMs: sample.nowMs,
        }
        : {}),
      safetyTripped: code === "POWER_CUT" ? true : context.safetyTripped,
    };
  });
}

/** The oven machine; the host provides `sensor` and the side-effect actions. */
export const ovenMachine = setup({
  types: {
    context: {} as OvenContext,
    events: {} as OvenEvent,
    input: {} as OvenInput,
  },
  actors: {
    /** The control loop: steers the heater and sends SAMPLE when one is due. */
    sensor: fromCallback<OvenEvent>(() => {}),
  },
  delays: {
    sensorSilence: ({ context }) => context.limits.sensorSilenceMs,
  },
  guards: {
    readingOutOfRange: ({ context, event }) => {
      const sample = sampleOf(event);
      return sample !== null && !readingInRange(context.limits, sample.temperatureC);
    },
    overTemperature: ({ context, event }) => {
      const sample = sampleOf(event);
      if (!sample) return false;
      const targetC = heatTargetC(context);
      const runaway = targetC > 0 && context.runawayArmedForC === targetC &&
        sample.temperatureC > targetC + context.limits.overTargetC;
      return sample.temperatureC > context.limits.maxC || runaway;
    },
    heatingTooSlow: ({ context, event }) => {
      const sample = sampleOf(event);
      const since = context.saturatedSince;
      if (!sample || !since || !heaterSaturated(context.heaterPct)) return false;
      return sample.nowMs - since.atMs >= context.limits.slowWindowMs &&
        sample.temperatureC - since.tempC < context.limits.slowMinRiseC;
    },
    safetyReportsTrip: ({ event }) => event.type === "SAFETY_STATE" && event.tripped,
    safetyClearedAndReadingOk: ({ context, event }) =>
      event.type === "SAFETY_STATE" && !event.tripped && context.fault?.code === "POWER_CUT" &&
      context.readingInRange,
    resettable: ({ context }) => context.readingInRange && !context.safetyTripped,
    hasSample: ({ context }) => context.lastSampleMs !== null,
    abortsActiveSession: ({ context, event }) =>
      event.type === "ABORT" && context.session?.record.orderId === event.orderId,
    // Only a reading taken since the session began counts: one from before it
    // was judged against the old target's band, and the oven may have left the
    // new band since without a crossing being reported.
    withinBand: ({ context }) =>
      context.session !== null && context.lastSampleMs !== null &&
      context.lastSampleMs >= context.session.record.startedAt &&
      inBand(context, context.temperatureC),
    bakeDone: ({ context }) =>
      context.session !== null && context.session.bakedMs >= context.session.cookTimeMs,
    idleStateIs: ({ context }, params: { from: IdleState | null; to: IdleState }) =>
      idleStateFor(context, params.from) === params.to,
  },
  actions: {
    // Placeholders: the host provides the effects.
    /** Writes `context.heaterPct` to the heater. */
    applyHeater: () => {},
    publishTemperature: () => {},
    publishProgress: () => {},
    /** Publishes the last ended session's final progress (COMPLETE or ERROR). */
    publishSessionEnded: () => {},
    publishCooked: () => {},
    /**
     * Publishes the fault event, the oven's alert and, when the fault ended a
     * session, that session's final progress; the heater is already off.
     */
    publishFault: () => {},

    control: assign(({ context, event }) => {
      const sample = sampleOf(event);
      return sample ? controlStep(context, sample) : {};
    }),
    recordSample: assign(({ context, event }) => {
      const sample = sampleOf(event);
      if (!sample) return {};
      const finite = Number.isFinite(sample.temperatureC);
      return {
        temperatureC: finite ? sample.temperatureC : context.temperatureC,
        readingInRange: readingInRange(context.limits, sample.temperatureC),
        lastSampleMs: sample.nowMs,
      };
    }),
    telemetry: enqueueActions(({ context, event, enqueue }) => {
      const sample = sampleOf(event);
      if (!sample) return;
      if (temperatureEventDue(context, sample)) {
        enqueue.assign({
          lastTemperatureEventMs: sample.nowMs,
          lastTemperatureEventC: sample.temperatureC,
        });
        enqueue("publishTemperature");
      }
      if (
        context.session &&
        (context.lastProgressEventMs === null ||
          sample.nowMs - context.lastProgressEventMs >= context.limits.progressPeriodMs)
      ) {
        enqueue.assign({ lastProgressEventMs: sample.nowMs });
        enqueue("publishProgress");
      }
    }),
    /** Without a target the heater goes off now, not at the next sample. */
    heaterOffWithoutTarget: enqueueActions(({ context, enqueue }) => {
      if (heatTargetC(context) > 0) return;
      enqueue("heaterOff");
      enqueue("applyHeater");
    }),
    disarmWatchdog: cancel("sensorWatchdog"),
    armWatchdog: raise({ type: "SENSOR_SILENT" }, { id: "sensorWatchdog", delay: "sensorSilence" }),
    recordThermocoupleFault: recordFault("THERMOCOUPLE_RANGE"),
    recordOverTemperatureFault: recordFault("OVER_TEMPERATURE"),
    recordSlowHeatingFault: recordFault("HEATING_TOO_SLOW"),
    recordPowerCutFault: recordFault("POWER_CUT"),
    heaterOff: assign({ heaterPct: 0, saturatedSince: null }),
    endSessionWithError: assign(({ context, event }) =>
      endSession(context, "ERROR", nowOf(event, context))
    ),
    completeSession: assign(({ context, event }) =>
      endSession(context, "COMPLETE", nowOf(event, context))
    ),
    clearFault: assign(({ context, event }) => ({
      fault: null,
      runawayArmedForC: null,
      ...evaluatePolicy(context, nowOf(event, context)),
    })),
    markSafety: assign(({ context, event }) => ({
      safetyTripped: event.type === "SAFETY_STATE"
        ? event.tripped
        : event.type === "SAFETY_TRIPPED"
        ? true
        : context.safetyTripped,
    })),
    applyQueue: assign(({ context, event }) => {
      if (event.type !== "QUEUE") return {};
      const queued = { ...context, queueLength: event.length };
      return { queueLength: event.length, ...evaluatePolicy(queued, event.nowMs) };
    }),
    setManualTarget: assign(({ context, event }) => {
      if (event.type !== "PREHEAT") return {};
      const policy = evaluatePolicy({ ...context, manual: null }, event.nowMs);
      return {
        ...policy,
        standbyTargetC: event.targetC,
        manual: { targetC: event.targetC, overriddenC: policy.standbyTargetC },
      };
    }),
    startSession: assign(({ context, event }) => {
      if (event.type !== "COOK") return {};
      const record: CookingSession = {
        sessionId: event.sessionId,
        orderId: event.orderId,
        machineId: context.machineId,
        startTemperatureC: context.temperatureC,
        targetTemperatureC: event.targetC,
        currentTemperatureC: context.temperatureC,
        estimatedCompletion: event.nowMs,
        timeRemainingMs: event.cookTimeMs,
        status: "HEATING",
        startedAt: event.nowMs,
        completedAt: null,
      };
      const session: ActiveSession = {
        record,
        pizzaId: event.pizzaId,
        cookTimeMs: event.cookTimeMs,
        bakedMs: 0,
      };
      const withSession = { ...context, session };
      session.record = sessionRecord(withSession, session, event.nowMs);
      return { session, lastProgressEventMs: null };
    }),
    startBaking: assign(({ context }) => {
      if (!context.session) return {};
      const session: ActiveSession = {
        ...context.session,
        record: { ...context.session.record, status: "COOKING" },
      };
      session.record = sessionRecord(context, session, context.lastSampleMs ?? 0);
      return { session };
    }),
  },
}).createMachine({
  id: "oven",
  context: ({ input }) => ({
    machineId: input.machineId,
    utcOffsetMin: input.utcOffsetMin,
    limits: { ...defaultOvenLimits, ...input.limits },
    temperatureC: 0,
    readingInRange: false,
    lastSampleMs: null,
    heaterPct: 0,
    queueLength: 0,
    standbyTargetC: 0,
    manual: null,
    policyEvaluatedAtMs: null,
    saturatedSince: null,
    runawayArmedForC: null,
    session: null,
    history: [],
    fault: null,
    safetyTripped: false,
    lastTemperatureEventMs: null,
    lastTemperatureEventC: null,
    lastProgressEventMs: null,
  }),
  invoke: { id: "sensor", src: "sensor" },
  entry: ["armWatchdog"],
  on: {
    SAMPLE: [
      {
        guard: "readingOutOfRange",
        target: ".fault",
        actions: "recordThermocoupleFault",
      },
      {
        guard: "overTemperature",
        target: ".fault",
        actions: "recordOverTemperatureFault",
      },
      {
        guard: "heatingTooSlow",
        target: ".fault",
        actions: "recordSlowHeatingFault",
      },
      // The control loop wrote the heater already; the machine only takes note.
      { actions: ["disarmWatchdog", "armWatchdog", "control", "telemetry"] },
    ],
    SENSOR_SILENT: {
      target: ".fault",
      actions: "recordThermocoupleFault",
    },
    SAFETY_TRIPPED: {
      target: ".fault",
      actions: "recordPowerCutFault",
    },
    SAFETY_STATE: [
      {
        guard: "safetyReportsTrip",
        target: ".fault",
        actions: "recordPowerCutFault",
      },
      { actions: "markSafety" },
    ],
    QUEUE: { actions: "applyQueue" },
  },
  initial: "idle",
  states: {
    idle: {
      initial: "routing",
      on: {
        COOK: { guard: "hasSample", target: "cooking", actions: "startSession" },
        PREHEAT: { actions: "setManualTarget" },
      },
      states: {
        // Transient: picks the idle state that fits the target and temperature.
        routing: { always: idleExits(null) },
        off: { tags: ["safe"], entry: "heaterOffWithoutTarget", always: idleExits("off") },
        preheating: { tags: ["hot"], always: idleExits("preheating") },
        holding: { tags: ["hot"], always: idleExits("holding") },
        cooling: {
          tags: ["hot"],
          entry: "heaterOffWithoutTarget",
          always: idleExits("cooling"),
        },
      },
    },
    cooking: {
      tags: ["hot"],
      initial: "heating",
      on: {
        ABORT: {
          guard: "abortsActiveSession",
          target: "idle",
          actions: [
            "endSessionWithError",
            "publishSessionEnded",
          ],
        },
      },
      states: {
        heating: {
          always: {
            guard: "withinBand",
            target: "baking",
            actions: ["startBaking", "publishProgress"],
          },
        },
        baking: {
          always: {
            guard: "bakeDone",
            target: "#oven.idle",
            actions: ["completeSession", "publishSessionEnded", "publishCooked"],
          },
        },
      },
    },
    fault: {
      tags: ["fault", "safe"],
      // Heater off first, in this very step; only then tell the world.
      entry: ["heaterOff", "applyHeater", "endSessionWithError", "publishFault"],
      on: {
        SAMPLE: {
          actions: [
            "disarmWatchdog",
            "armWatchdog",
            "recordSample",
            "heaterOff",
            "applyHeater",
            "telemetry",
          ],
        },
        SENSOR_SILENT: {},
        SAFETY_TRIPPED: { actions: "markSafety" },
        SAFETY_STATE: [
          {
            guard: "safetyClearedAndReadingOk",
            target: "idle",
            actions: [
              "markSafety",
              "clearFault",
            ],
          },
          { actions: "markSafety" },
        ],
        RESET: {
          guard: "resettable",
          target: "idle",
          actions: "clearFault",
        },
      },
    },
  },
});

/** Eventless exits from idle state `from` (null: the router) to every other idle state. */
function idleExits(from: IdleState | null) {
  return idleStates.filter((to) => to !== from).map((to) => ({
    guard: { type: "idleStateIs" as const, params: { from, to } },
    target: to,
  }));
}

/** A snapshot of the oven machine. */
export type OvenSnapshot = SnapshotFrom<typeof ovenMachine>;

/** The protocol's OvenState of a snapshot of the oven machine. */
export function ovenStateOf(snapshot: OvenSnapshot): OvenState {
  if (snapshot.matches("fault")) return "fault";
  if (snapshot.matches("cooking")) return "cooking";
  return idleStates.find((s) => snapshot.matches({ idle: s })) ?? "off";
}
