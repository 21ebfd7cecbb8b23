/** Test fixture: a clock whose time moves only when the test says so. */
import type { Clock } from "../clock/clock.ts";

/**
 * A clock the test moves by hand with `advance`, for models that only read
 * `now()` (they integrate lazily up to it). It arms no timers: `setTimeout`
 * does nothing.
 */
export function manualClock(startMs = 1_700_000_000_000): Clock & { advance(ms: number): void } {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    setTimeout: () => undefined,
    clearTimeout: () => {},
    advance: (ms) => {
      nowMs += ms;
    },
  };
}
