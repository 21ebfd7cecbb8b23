/**
 * Wall time for reports only (how long a run took): read through the clock
 * module, the one place allowed to look at wall time. It never enters a run.
 */
import { createRealClock } from "../../clock/clock.ts";

/** Starts a stopwatch; the returned function gives the wall ms elapsed. */
export function stopwatch(): () => number {
  const wall = createRealClock();
  const t0 = wall.now();
  return () => wall.now() - t0;
}
