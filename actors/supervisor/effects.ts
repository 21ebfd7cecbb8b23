/**
 * The supervisor's bus work, as the actors its machine declares: the watchdog
 * tick, cancel loops that retry until the order actor answers, order sweeps
 * after a safety trip, and restart requests to component hosts.
 */
import { fromCallback } from "xstate";
import { every, sleep } from "../../clock/clock.ts";
import type { ActorContext } from "../actor.ts";
import { type ErrorCode, fail, type Result } from "../../protocol/define.ts";
import { restart } from "../../protocol/common.ts";
import * as order from "../../protocol/order.ts";
import type { SupervisorEvent, TickerInput } from "./machine.ts";
import type { CancelOrderInput, HeardBeats, ListOrdersInput, RestartInput, Tick } from "./plans.ts";

/** Deadlines and backoff of the supervisor's requests, in clock ms. */
export interface EffectTimings {
  requestTimeoutMs: number;
  restartTimeoutMs: number;
  backoffFirstMs: number;
  backoffMaxMs: number;
}

/**
 * Defaults: a stuck order actor is asked again at most every 10 s. A request
 * deadline that passes while the order actor is merely slow means a second
 * cancel of the same order, which it and the payment actor take as a repeat.
 */
export const defaultEffectTimings: EffectTimings = {
  requestTimeoutMs: 10_000,
  restartTimeoutMs: 10_000,
  backoffFirstMs: 250,
  backoffMaxMs: 10_000,
};

/** Answers that mean nobody heard us (or could not act yet): ask again. */
const retryable: ReadonlySet<ErrorCode> = new Set(["UNAVAILABLE", "TIMEOUT", "INTERNAL"]);

/**
 * Calls `attempt` until it returns a result `done` accepts, sleeping with
 * doubling backoff between tries; resolves null when `signal` aborts first.
 */
async function untilAnswered<T>(
  ctx: ActorContext,
  timings: EffectTimings,
  signal: AbortSignal,
  what: Record<string, unknown>,
  attempt: () => Promise<Result<T>>,
  done: (result: Result<T>) => boolean,
): Promise<Result<T> | null> {
  let backoffMs = timings.backoffFirstMs;
  for (let tries = 1; !signal.aborted; tries++) {
    const result = await settled(attempt);
    if (signal.aborted) return null;
    if (done(result)) return result;
    ctx.log.log("warn", "no answer yet, retrying", {
      ...what,
      tries,
      backoffMs,
      error: result.ok ? null : result.error,
    });
    try {
      await sleep(ctx.clock, backoffMs, signal);
    } catch {
      return null;
    }
    backoffMs = Math.min(backoffMs * 2, timings.backoffMaxMs);
  }
  return null;
}

/** A request that never rejects: an unexpected throw becomes an INTERNAL result. */
function settled<T>(request: () => Promise<Result<T>>): Promise<Result<T>> {
  return Promise.resolve().then(request).catch((err: unknown) =>
    fail<T>("INTERNAL", `Request failed: ${String(err)}`)
  );
}

function describe(result: Result<unknown>): string {
  return result.ok ? "ok" : `${result.error.code}: ${result.error.message}`;
}

/** What the watchdog's ticker asks of the supervisor's host. */
export interface TickerWatch {
  /** The routine beats heard, latest per component (see `isRoutineBeat`). */
  heard(): HeardBeats;
  /** Whether the machine may be spared `tick` (see `tickIsRoutine`). */
  tickIsRoutine(tick: Tick): boolean;
}

/**
 * The implementations of the supervisor machine's actors on `ctx`'s bus and
 * clock; each tick hands over the routine beats the host heard.
 */
export function supervisorEffects(
  ctx: ActorContext,
  watch: TickerWatch,
  timings = defaultEffectTimings,
) {
  const logFailure = (err: unknown) =>
    ctx.log.log("error", "supervisor effect failed", { err: String(err) });
  return {
    ticker: fromCallback<SupervisorEvent, TickerInput>(({ input, sendBack }) => {
      let lastMs: number | null = null;
      return every(ctx.clock, input.periodMs, () => {
        const nowMs = ctx.clock.now();
        const tick = {
          nowMs,
          sinceLastTickMs: lastMs === null ? null : nowMs - lastMs,
          seen: watch.heard(),
        };
        lastMs = nowMs;
        if (!watch.tickIsRoutine(tick)) sendBack({ type: "TICK", ...tick });
      });
    }),

    cancelOrder: fromCallback<SupervisorEvent, CancelOrderInput>(({ input, sendBack }) => {
      const stop = new AbortController();
      untilAnswered(
        ctx,
        timings,
        stop.signal,
        { op: "order.cancel", orderId: input.orderId },
        () =>
          ctx.bus.request(order.cancel, {
            orderId: input.orderId,
            reason: input.reason,
            by: "SUPERVISOR",
          }, { timeoutMs: timings.requestTimeoutMs }),
        // Any considered answer ends the loop: cancelled, or refused for a
        // reason retrying cannot change (already dispensed, unknown order).
        (r) => r.ok || !retryable.has(r.error.code),
      ).then((result) => {
        if (result) {
          sendBack({
            type: "CANCEL_DONE",
            orderId: input.orderId,
            ok: result.ok,
            detail: describe(result),
          });
        }
      }).catch(logFailure);
      return () => stop.abort();
    }),

    listOrders: fromCallback<SupervisorEvent, ListOrdersInput>(({ input, sendBack }) => {
      const stop = new AbortController();
      untilAnswered(
        ctx,
        timings,
        stop.signal,
        { op: "order.list", sweepId: input.sweepId },
        () => ctx.bus.request(order.list, {}, { timeoutMs: timings.requestTimeoutMs }),
        (r) => r.ok,
      ).then((result) => {
        if (result?.ok) {
          sendBack({
            type: "ORDERS_LISTED",
            sweepId: input.sweepId,
            reason: input.reason,
            orders: result.value.orders.map((o) => ({ orderId: o.orderId, status: o.status })),
            nowMs: ctx.clock.now(),
          });
        }
      }).catch(logFailure);
      return () => stop.abort();
    }),

    restartComponent: fromCallback<SupervisorEvent, RestartInput>(({ input, sendBack }) => {
      let stopped = false;
      // One attempt: a host that does not answer is noticed again by the
      // watchdog, and that failure counts against the restart intensity.
      settled(() =>
        ctx.bus.request(restart[input.component], {}, { timeoutMs: timings.restartTimeoutMs })
      ).then((result) => {
        if (stopped) return;
        sendBack({
          type: "RESTART_DONE",
          component: input.component,
          ok: result.ok,
          restarts: result.ok ? result.value.restarts : null,
          detail: describe(result),
          nowMs: ctx.clock.now(),
        });
      }).catch(logFailure);
      return () => {
        stopped = true;
      };
    }),
  };
}
