/**
 * How an order drives other components over the bus: calls that retry while
 * the bus is down (a NATS restart must not lose an order) and fail at once on
 * a real refusal, and long operations polled until DONE by repeating their
 * idempotent command.
 */
import { sleep } from "../../clock/clock.ts";
import type { Clock } from "../../clock/clock.ts";
import type { Result } from "../../protocol/define.ts";
import { StepError } from "./order_machine.ts";

/** Options of {@linkcode untilDone}. */
export interface UntilDoneOptions {
  clock: Clock;
  /** What is being waited for, for the error message. */
  what: string;
  pollMs: number;
  deadlineMs: number;
  signal?: AbortSignal;
}

const transient = new Set(["TIMEOUT", "UNAVAILABLE"]);

/**
 * Repeats `attempt` until it returns a value `isDone` accepts. Transient errors
 * (TIMEOUT, UNAVAILABLE) are retried; any other error reply is thrown at once.
 *
 * @throws {StepError} On a refusal, or when `deadlineMs` passes.
 */
export async function untilDone<R>(
  attempt: () => Promise<Result<R>>,
  isDone: (value: R) => boolean,
  options: UntilDoneOptions,
): Promise<R> {
  const { clock } = options;
  const deadline = clock.now() + options.deadlineMs;
  while (true) {
    const result = await attempt();
    if (result.ok && isDone(result.value)) return result.value;
    if (!result.ok && !transient.has(result.error.code)) throw new StepError(result.error);
    if (clock.now() >= deadline) {
      throw new StepError({
        code: "TIMEOUT",
        message: `${options.what} did not finish within ${Math.round(options.deadlineMs / 1000)} s`,
      });
    }
    await sleep(clock, options.pollMs, options.signal);
  }
}
