/**
 * The oven's inner control loop: every tick it reads the thermocouple, runs the
 * PID toward the machine's heat target and writes the heater. It hands the
 * oven machine a sample only when the machine must see one (`sampleIsDue`), so
 * the state machine runs about every 5 s while the heater is steered ten
 * times a second during a bake, as firmware splits a fast loop from a slow
 * supervisor.
 */
import type { Clock, TimerHandle } from "../../clock/clock.ts";
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
}

/**
 * Starts the loop; returns its stop. A failing driver call never ends it. The
 * loop runs on plain clock timers rather than awaits: at ten ticks a second it
 * is the hottest path of a simulated machine-day.
 */
export function startControlLoop(o: ControlLoopOptions): () => void {
  const { clock, driver, log } = o;
  let stopped = false;
  let timer: TimerHandle | undefined;
  let pid = initialPidState();
  let lastTickMs: number | null = null;
  let previousC = Number.NaN;

  const heaterFailed = (err: unknown) =>
    log.log("error", "heater write failed", { err: String(err) });

  const step = (temperatureC: number, error: string | undefined) => {
    if (stopped) return;
    const nowMs = clock.now();
    const context = o.context();
    const targetC = heatTargetC(context);
    let heaterPct = 0;
    if (targetC > 0 && error === undefined) {
      const next = pidStep(o.gains, pid, {
        targetC,
        measuredC: temperatureC,
        dtMs: lastTickMs === null ? 0 : nowMs - lastTickMs,
      });
      pid = next.state;
      heaterPct = next.outputPct;
    } else {
      // Without a target (or in fault) the controller starts afresh next time.
      pid = initialPidState();
    }
    lastTickMs = nowMs;
    // Written every tick, also when unchanged: the machine may have cut it to 0 meanwhile.
    driver.setHeaterPct(heaterPct).catch(heaterFailed);
    const sample = { temperatureC, previousC, nowMs, ...(error === undefined ? {} : { error }) };
    previousC = temperatureC;
    if (sampleIsDue(context, sample)) o.send({ type: "SAMPLE", heaterPct, ...sample });
    if (stopped) return;
    timer = clock.setTimeout(tick, o.context().session ? o.cookingPeriodMs : o.idlePeriodMs);
  };
  const safeStep = (temperatureC: number, error: string | undefined) => {
    try {
      step(temperatureC, error);
    } catch (err) {
      log.log("error", "control step failed", { err: String(err) });
    }
  };
  const read = (temperatureC: number) => safeStep(temperatureC, undefined);
  const readFailed = (err: unknown) => safeStep(Number.NaN, String(err));
  const tick = () => void driver.readTemperatureC().then(read, readFailed);
  tick();
  return () => {
    stopped = true;
    clock.clearTimeout(timer);
  };
}
