/**
 * A discrete-event clock for the simulator: time stands still until the
 * simulator runs it, and then jumps from one timer to the next, so a machine-day
 * passes in the time it takes to run its timers.
 *
 * Timers fire in (due time, insertion sequence) order, so ties are broken the
 * same way on every run.
 *
 * Promise chains: after each timer fires (and before the first one), the clock
 * settles the microtask queue without ever yielding to a macrotask. It awaits
 * a resolved value repeatedly; each await runs every microtask queued before
 * it, so one await is one "generation" of the queue. While the clock runs it
 * counts promise reaction jobs with V8's promise hooks (`node:v8`): a
 * generation in which no job but the clock's own ran, and nobody called
 * `now()`, `setTimeout()` or `clearTimeout()`, found the queue empty. The clock
 * stops after `settleTicks` (default 4) such quiet generations in a row; the
 * margin is for the jobs the hooks cannot see (`queueMicrotask` callbacks, and
 * the one-generation hop when a promise is resolved with another promise). So
 * every promise chain a timer starts completes at that timer's instant, before
 * the next timer fires. Because no macrotask runs during a run, real I/O and
 * wall-clock timers cannot interleave with virtual time: a run is a pure
 * function of its inputs.
 */
import v8 from "node:v8";
import type { Clock, TimerHandle } from "../clock/clock.ts";

/** Options of {@linkcode createVirtualClock}. */
export interface VirtualClockOptions {
  /** Most timers allowed to fire at one virtual instant (default 10,000). */
  maxTimersPerInstant?: number;
  /** Quiet microtask generations in a row that count as settled (default 4). */
  settleTicks?: number;
  /** Most microtask generations one settle may take (default 1,000,000). */
  maxSettleTicks?: number;
}

/** A `Clock` whose time moves only when it is run. */
export interface VirtualClock extends Clock {
  /**
   * Fires every timer due at or before `timeMs`, in order, then sets the time
   * to `timeMs`; resolves with the number of timers fired.
   *
   * @throws {RangeError} When `timeMs` is not an integer at or after `now()`.
   * @throws {RunawayError} When a timer chain or a promise chain never ends.
   */
  runUntil(timeMs: number): Promise<number>;
  /** `runUntil(now() + ms)`. */
  runFor(ms: number): Promise<number>;
  /** Fires the next timer, jumping time to it; false when none is pending. */
  step(): Promise<boolean>;
  /** Lets pending promise chains settle without moving time. */
  settle(): Promise<void>;
  /** How many timers are pending. */
  pending(): number;
  /** Due time of the next pending timer, if any. */
  nextDueMs(): number | undefined;
  /** How many timers fired since creation. */
  readonly firedCount: number;
}

/** Something ran without end at one virtual instant. */
export class RunawayError extends Error {
  /** Creates the error: `count` timers or microtask generations at `atMs`. */
  constructor(
    readonly kind: "timers" | "microtasks",
    readonly count: number,
    readonly atMs: number,
  ) {
    super(
      kind === "timers"
        ? `Runaway timer chain: more than ${count} timers fired at virtual time ${atMs} ms`
        : `Runaway promise chain: still busy after ${count} microtask generations at virtual time ${atMs} ms`,
    );
    this.name = "RunawayError";
  }
}

interface Timer {
  /** The clock that made it, so a foreign handle is ignored. */
  owner: object;
  dueMs: number;
  seq: number;
  fn: (() => void) | null;
}

// Promise reaction jobs run while any virtual clock runs; one hook serves all clocks.
let jobsRun = 0;
let jobWatchers = 0;
let stopJobHook: (() => void) | undefined;

/** Counts promise jobs until the returned function is called. */
function watchJobs(): () => void {
  if (jobWatchers++ === 0) {
    stopJobHook = v8.promiseHooks.onBefore(() => {
      jobsRun++;
    }) as () => void;
  }
  return () => {
    if (--jobWatchers === 0) {
      stopJobHook?.();
      stopJobHook = undefined;
    }
  };
}

const before = (a: Timer, b: Timer) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);

/**
 * Creates a virtual clock at `startMs` epoch ms.
 *
 * @throws {RangeError} When `startMs` or an option is not a suitable number.
 * @example
 * ```ts
 * const clock = createVirtualClock(Date.UTC(2025, 0, 1));
 * let fired = false;
 * clock.setTimeout(() => fired = true, 5000);
 * await clock.runFor(5000); // fired; clock.now() is start + 5000
 * ```
 */
export function createVirtualClock(
  startMs: number,
  options: VirtualClockOptions = {},
): VirtualClock {
  const maxTimersPerInstant = positiveInt(
    "maxTimersPerInstant",
    options.maxTimersPerInstant,
    10_000,
  );
  const settleTicks = positiveInt("settleTicks", options.settleTicks, 4);
  const maxSettleTicks = positiveInt("maxSettleTicks", options.maxSettleTicks, 1_000_000);
  if (!Number.isSafeInteger(startMs)) {
    throw new RangeError(`Virtual clock start must be an integer epoch ms, got "${startMs}"`);
  }

  const self = {};
  let nowMs = startMs;
  let seq = 0;
  let firedCount = 0;
  let firedThisInstant = 0;
  // Bumped on every call into the clock: settle() counts that as work afoot
  // too, which also catches queueMicrotask callbacks that touch the clock.
  let activity = 0;
  let running = false;
  // Binary min-heap; cancelled timers stay in it (fn = null) until popped or
  // compacted, so clearTimeout is O(1).
  let heap: Timer[] = [];
  let cancelled = 0;

  const push = (timer: Timer) => {
    let i = heap.length;
    heap.push(timer);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(timer, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = timer;
  };
  const siftDown = (i: number) => {
    const n = heap.length;
    while (true) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && before(heap[l]!, heap[m]!)) m = l;
      if (r < n && before(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      const t = heap[i]!;
      heap[i] = heap[m]!;
      heap[m] = t;
      i = m;
    }
  };
  const popTop = () => {
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      siftDown(0);
    }
  };
  /** The next live timer, dropping cancelled ones from the top. */
  const peek = (): Timer | undefined => {
    while (heap.length > 0 && heap[0]!.fn === null) {
      popTop();
      cancelled--;
    }
    return heap[0];
  };
  const compact = () => {
    heap = heap.filter((t) => t.fn !== null);
    cancelled = 0;
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) siftDown(i);
  };

  const settle = async () => {
    let quiet = 0;
    let ticks = 0;
    while (quiet < settleTicks) {
      const jobs = jobsRun;
      const calls = activity;
      await undefined;
      // Our own continuation is one job; any other job or clock call is work.
      if (jobsRun - jobs > 1 || activity !== calls) quiet = 0;
      else if (jobsRun - jobs === 1) quiet++;
      else throw new Error("V8 promise hooks did not count a promise job; cannot settle");
      if (++ticks > maxSettleTicks) throw new RunawayError("microtasks", maxSettleTicks, nowMs);
    }
  };

  const fireNext = (limitMs: number): boolean => {
    const timer = peek();
    if (!timer || timer.dueMs > limitMs) return false;
    popTop();
    if (timer.dueMs > nowMs) {
      nowMs = timer.dueMs;
      firedThisInstant = 0;
    }
    if (++firedThisInstant > maxTimersPerInstant) {
      throw new RunawayError("timers", maxTimersPerInstant, nowMs);
    }
    const fn = timer.fn!;
    timer.fn = null;
    firedCount++;
    fn();
    return true;
  };

  /** Runs `body` as the only run in progress. */
  const exclusive = async <T>(body: () => Promise<T>): Promise<T> => {
    if (running) throw new Error("Virtual clock is already running; await the run in progress");
    running = true;
    const unwatch = watchJobs();
    try {
      return await body();
    } finally {
      unwatch();
      running = false;
    }
  };

  const runUntil = (timeMs: number) =>
    exclusive(async () => {
      if (!Number.isSafeInteger(timeMs) || timeMs < nowMs) {
        throw new RangeError(
          `Virtual clock can only run forward to an integer ms from ${nowMs}, got "${timeMs}"`,
        );
      }
      let fired = 0;
      await settle();
      while (fireNext(timeMs)) {
        fired++;
        await settle();
      }
      if (timeMs > nowMs) {
        nowMs = timeMs;
        firedThisInstant = 0;
      }
      return fired;
    });

  return {
    now: () => {
      activity++;
      return nowMs;
    },
    setTimeout: (fn: () => void, ms: number): TimerHandle => {
      activity++;
      // Like the platform: a missing or bad delay means "as soon as possible".
      // Fractions round up so a timer never fires early and time stays integral.
      const delayMs = Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
      const timer: Timer = { owner: self, dueMs: nowMs + delayMs, seq: seq++, fn };
      push(timer);
      return timer;
    },
    clearTimeout: (handle: TimerHandle) => {
      activity++;
      const timer = handle as Timer | undefined;
      // Fired and cancelled timers have no fn: clearing them again is a no-op.
      if (typeof timer !== "object" || timer?.owner !== self || timer.fn === null) return;
      timer.fn = null;
      cancelled++;
      if (cancelled > 64 && cancelled * 2 > heap.length) compact();
    },
    runUntil,
    runFor: (ms) => runUntil(nowMs + ms),
    step: () =>
      exclusive(async () => {
        await settle();
        if (!fireNext(Infinity)) return false;
        await settle();
        return true;
      }),
    settle: () => exclusive(settle),
    pending: () => heap.length - cancelled,
    nextDueMs: () => peek()?.dueMs,
    get firedCount() {
      return firedCount;
    },
  };
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new RangeError(`Virtual clock option ${name} must be a positive integer, got "${n}"`);
  }
  return n;
}
