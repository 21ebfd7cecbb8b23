/**
 * The oven's inner control loop: every tick it reads the thermocouple, runs the
 * PID toward the machine's heat target and writes the heater. It hands the
 * oven machine a sample only when the machine must see one (`sampleIsDue`), so
 * the state machine runs about once a second while the heater is steered ten
 * times a second during a bake, as firmware splits a fast loop from a slow
 * supervisor.
 */
import { type Clock, sleep } from "../../clock/clock.ts";
import type { OvenDriver } from "../../hardware/oven.ts";
import type { Logger } from "../../log/log.ts";
import { heatTargetC, type OvenContext, type OvenEvent, sampleIsDue } from "./machine.ts";
import { initialPidState, type PidGains, pidStep } from "./pid.ts";

/** What the loop needs of its host. */
export interface ControlLoopOptions {
  clock: Clock;
  driver: OvenDriver;
  gains: PidGains;
  log: Logger;
  /** The machine's context now: target, limits, session. */
  context(): OvenContext;
  /** Hands a sample to the machine. */
  send(event: OvenEvent): void;
  /** Tick while a session runs, in clock ms (seed §6.1: 100 ms). */
  cookingPeriodMs: number;
  /** Tick without a session: preheating, holding, cooling or off. */
  idlePeriodMs: number;
  signal: AbortSignal;
}

/** Runs the loop until `signal` aborts; a failing driver call never ends it. */
export async function runControlLoop(o: ControlLoopOptions): Promise<void> {
  const { clock, driver, signal } = o;
  let pid = initialPidState();
  let lastTickMs: number | null = null;
  let previousC = Number.NaN;
  while (!signal.aborted) {
    let temperatureC: number;
    let error: string | undefined;
    try {
      temperatureC = await driver.readTemperatureC();
    } catch (err) {
      temperatureC = Number.NaN;
      error = String(err);
    }
    if (signal.aborted) return;
    const nowMs = clock.now();
    const context = o.context();
    const targetC = heatTargetC(context);
    let heaterPct = 0;
    if (targetC > 0 && error === undefined) {
      const step = pidStep(o.gains, pid, {
        targetC,
        measuredC: temperatureC,
        dtMs: lastTickMs === null ? 0 : nowMs - lastTickMs,
      });
      pid = step.state;
      heaterPct = step.outputPct;
    } else {
      // Without a target (or in fault) the controller starts afresh next time.
      pid = initialPidState();
    }
    lastTickMs = nowMs;
    // Written every tick, also when unchanged: the machine may have cut it to 0 meanwhile.
    driver.setHeaterPct(heaterPct).catch((err: unknown) => {
      o.log.log("error", "heater write failed", { pct: heaterPct, err: String(err) });
    });
    const sample = { temperatureC, previousC, nowMs, ...(error === undefined ? {} : { error }) };
    previousC = temperatureC;
    if (sampleIsDue(context, sample)) {
      o.send({
        type: "SAMPLE",
        temperatureC,
        heaterPct,
        nowMs,
        ...(error === undefined ? {} : { error }),
      });
    }
    const periodMs = o.context().session ? o.cookingPeriodMs : o.idlePeriodMs;
    await sleep(clock, periodMs, signal).catch(() => {});
  }
}
