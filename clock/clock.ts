/**
 * The only module that reads wall time or arms timers. Everything else takes a
 * `Clock`, so the same code runs in real time, scaled time or virtual time.
 */

/** Opaque handle of a scheduled callback. */
export type TimerHandle = unknown;

/** Time and timers, in clock milliseconds (epoch ms of the clock's world). */
export interface Clock {
  /** Current time in epoch milliseconds of this clock. */
  now(): number;
  /** Runs `fn` once after `ms` clock milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** Options of {@linkcode createRealClock}. */
export interface RealClockOptions {
  /** How many clock milliseconds pass per wall millisecond (default 1). */
  speed?: number;
}

/**
 * A clock on wall time, optionally running `speed` times faster: time starts at
 * the wall time of creation and advances `speed` ms per wall ms.
 *
 * @throws {RangeError} When `speed` is not a positive finite number.
 */
export function createRealClock(options: RealClockOptions = {}): Clock & { speed: number } {
  const speed = options.speed ?? 1;
  if (!Number.isFinite(speed) || speed <= 0) {
    throw new RangeError(`Clock speed must be a positive number, got "${speed}"`);
  }
  const epoch0 = Date.now();
  const perf0 = performance.now();
  return {
    speed,
    now: () => Math.floor(epoch0 + (performance.now() - perf0) * speed),
    setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms) / speed),
    clearTimeout: (handle) => clearTimeout(handle as number),
  };
}

/** Resolves after `ms` clock milliseconds, or rejects when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Calls `fn` every `periodMs` clock milliseconds until the returned function is
 * called. Each period is scheduled after the previous call, so a slow `fn`
 * never piles up calls.
 */
export function every(clock: Clock, periodMs: number, fn: () => void): () => void {
  let stopped = false;
  let handle: TimerHandle;
  const tick = () => {
    if (stopped) return;
    fn();
    if (!stopped) handle = clock.setTimeout(tick, periodMs);
  };
  handle = clock.setTimeout(tick, periodMs);
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
  };
}
