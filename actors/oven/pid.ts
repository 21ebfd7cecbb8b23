/**
 * The oven's PID controller (seed 003 §6.1) as a pure step function: state in,
 * state and heater output out, so the machine keeps it in its context and a
 * replay computes the same outputs.
 */

/** Gains of the controller; time in seconds as in the seed. */
export interface PidGains {
  /** Heater % per °C of error. */
  kp: number;
  /** Heater % per °C·s of accumulated error. */
  ki: number;
  /** Heater % per °C/s of temperature change. */
  kd: number;
  /** Only this close to target does the integral learn, so a long heat-up never winds it up. */
  integralBandC: number;
}

/** What the controller remembers between steps. */
export interface PidState {
  /** The integral term's contribution, in heater %, kept within 0–100. */
  integralPct: number;
  /** The previous measurement, for the derivative; null before the first step. */
  lastMeasuredC: number | null;
}

/** One sample. */
export interface PidInput {
  targetC: number;
  measuredC: number;
  /** Clock time since the previous step; the machine measures it from `clock.now()`. */
  dtMs: number;
}

/** The result of one step. */
export interface PidOutput {
  state: PidState;
  /** Heater power, always within 0–100. */
  outputPct: number;
}

/**
 * Gains tuned on the simulated oven (3 kW, 2.6 kJ/K, 323 s time constant):
 * cold to within 3 °C of 220 in about 4.5 min with under 1 °C of overshoot, and
 * still stable when a slow host stretches the 100 ms tick to 20 s.
 */
export const defaultPidGains: PidGains = { kp: 5, ki: 0.1, kd: 10, integralBandC: 30 };

/** The controller before its first sample. */
export function initialPidState(): PidState {
  return { integralPct: 0, lastMeasuredC: null };
}

function clampPct(value: number): number {
  return Math.min(100, Math.max(0, value));
}

/**
 * One PID step. The derivative acts on the measurement (not the error) so a
 * new target gives no kick. Anti-windup: the integral learns only within
 * `integralBandC` of target and only when that does not push a
 * saturated output further into its rail, and it is itself kept within 0–100 %,
 * so after any saturation the output leaves the rail as soon as the error turns.
 * A non-finite input or dt yields 0 % (heater off) and leaves the state as is.
 */
export function pidStep(gains: PidGains, state: PidState, input: PidInput): PidOutput {
  const { targetC, measuredC, dtMs } = input;
  if (
    !Number.isFinite(targetC) || !Number.isFinite(measuredC) || !Number.isFinite(dtMs) ||
    !Number.isFinite(gains.kp) || !Number.isFinite(gains.ki) || !Number.isFinite(gains.kd)
  ) {
    return { state, outputPct: 0 };
  }
  const errorC = targetC - measuredC;
  const dtS = Math.max(0, dtMs) / 1000;
  const proportionalPct = gains.kp * errorC;
  const derivativePct = dtS > 0 && state.lastMeasuredC !== null
    ? -gains.kd * (measuredC - state.lastMeasuredC) / dtS
    : 0;
  const unclamped = proportionalPct + state.integralPct + derivativePct;
  const pushesIntoRail = (unclamped >= 100 && errorC > 0) || (unclamped <= 0 && errorC < 0);
  const learns = dtS > 0 && Math.abs(errorC) <= gains.integralBandC && !pushesIntoRail;
  const integralPct = learns
    ? clampPct(state.integralPct + gains.ki * errorC * dtS)
    : clampPct(state.integralPct);
  const outputPct = clampPct(proportionalPct + integralPct + derivativePct);
  return {
    state: {
      integralPct: Number.isFinite(integralPct) ? integralPct : 0,
      lastMeasuredC: measuredC,
    },
    outputPct: Number.isFinite(outputPct) ? outputPct : 0,
  };
}
