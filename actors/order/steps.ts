/**
 * How an order drives other components over the bus: calls that retry while
 * the bus is down (a NATS restart must not lose an order) and fail at once on
 * a real refusal, and long operations asked again by their idempotent command
 * when the component announces an end, with a slow poll as the fallback for a
 * lost event or a restarted component.
 */
import { sleep } from "../../clock/clock.ts";
import type { Clock } from "../../clock/clock.ts";
import type { TypedBus } from "../../bus/typed_bus.ts";
import type { Envelope, EventDef, Result } from "../../protocol/define.ts";
import { StepError } from "./order_machine.ts";

/** Subscribes `wake` to something that may end a wait; returns the unsubscribe. */
export type WakeSource = (wake: () => void) => () => void;

/** Options of {@linkcode untilDone}. */
export interface UntilDoneOptions<R = unknown> {
  clock: Clock;
  /** What is being waited for, for the error message. */
  what: string;
  /** Clock ms between attempts when nothing wakes the wait earlier. */
  pollMs: number;
  /**
   * Clock ms until the next attempt after `value`, an unfinished answer, when
   * it says when the work should end (default `pollMs`).
   */
  nextPollMs?: (value: R) => number;
  deadlineMs: number;
  signal?: AbortSignal;
  /** Events after which the next attempt starts at once instead of after `pollMs`. */
  wakeOn?: WakeSource[];
}

const transient = new Set(["TIMEOUT", "UNAVAILABLE"]);

/**
 * Wakes on the messages of `def` from our machine that `accept` takes: the
 * component's own word that an operation ended.
 */
export function onEvent<P>(
  bus: TypedBus,
  def: EventDef<P>,
  accept: (msg: Envelope & P) => boolean,
): WakeSource {
  return (wake) =>
    bus.subscribe(def, bus.machineId, (msg) => {
      if (accept(msg)) wake();
    });
}

/**
 * Repeats `attempt` until it returns a value `isDone` accepts: after `pollMs`,
 * or at once when a {@linkcode WakeSource} fires (also while an attempt is in
 * flight). Transient errors (TIMEOUT, UNAVAILABLE) are retried; any other error
 * reply is thrown at once.
 *
 * @throws {StepError} On a refusal, or when `deadlineMs` passes.
 */
export async function untilDone<R>(
  attempt: () => Promise<Result<R>>,
  isDone: (value: R) => boolean,
  options: UntilDoneOptions<R>,
): Promise<R> {
  const { clock, signal } = options;
  const deadline = clock.now() + options.deadlineMs;
  let woken = false;
  let nap: AbortController | null = null;
  const wake = () => {
    woken = true;
    nap?.abort();
  };
  const unsubscribes = (options.wakeOn ?? []).map((source) => source(wake));
  try {
    while (true) {
      woken = false;
      const result = await attempt();
      if (result.ok && isDone(result.value)) return result.value;
      if (!result.ok && !transient.has(result.error.code)) throw new StepError(result.error);
      const left = deadline - clock.now();
      if (left <= 0) {
        throw new StepError({
          code: "TIMEOUT",
          message: `${options.what} did not finish within ${
            Math.round(options.deadlineMs / 1000)
          } s`,
        });
      }
      if (woken) continue;
      const pollMs = result.ok && options.nextPollMs
        ? options.nextPollMs(result.value)
        : options.pollMs;
      nap = new AbortController();
      try {
        await sleep(
          clock,
          Math.min(pollMs, left),
          signal ? AbortSignal.any([signal, nap.signal]) : nap.signal,
        );
      } catch (err) {
        // A wake-up ends the nap early; the caller's abort ends the wait.
        if (signal?.aborted || !nap.signal.aborted) throw err;
      } finally {
        nap = null;
      }
    }
  } finally {
    for (const unsubscribe of unsubscribes) unsubscribe();
  }
}
