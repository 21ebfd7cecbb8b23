/**
 * The OTP restart-intensity rule: a supervisor restarts a failed child at most
 * `maxRestarts` times within any `periodMs`; one more failure inside that
 * window means restarting does not help, and the supervisor gives up on it.
 */

/** How many restarts are allowed within how long. */
export interface RestartIntensity {
  maxRestarts: number;
  periodMs: number;
}

/** OTP's default as the issue asks for it: at most 3 restarts in 60 s. */
export const defaultRestartIntensity: RestartIntensity = { maxRestarts: 3, periodMs: 60_000 };

/** Whether a failure at `nowMs` may be answered by a restart, and the history to keep. */
export interface RestartDecision {
  allowed: boolean;
  /** Restart instants still inside the window, including this one when allowed. */
  historyMs: number[];
}

/**
 * Decides whether a failure at `nowMs` may be answered with a restart, given
 * the instants of earlier restarts. Restarts older than `periodMs` no longer
 * count, so the window slides; the returned history never holds more than
 * `maxRestarts` instants.
 *
 * @throws {RangeError} When `intensity` has a negative or non-integer
 *   `maxRestarts` or a non-positive `periodMs`.
 * @example
 * ```ts
 * let h: number[] = [];
 * for (const t of [0, 1000, 2000]) h = decideRestart(h, t).historyMs; // all allowed
 * decideRestart(h, 3000).allowed; // false: a 4th failure within 60 s
 * decideRestart(h, 60_500).allowed; // true: the restart at 0 left the window
 * ```
 */
export function decideRestart(
  historyMs: readonly number[],
  nowMs: number,
  intensity: RestartIntensity = defaultRestartIntensity,
): RestartDecision {
  const { maxRestarts, periodMs } = intensity;
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0) {
    throw new RangeError(`Restart intensity needs maxRestarts >= 0, got "${maxRestarts}"`);
  }
  if (!Number.isFinite(periodMs) || periodMs <= 0) {
    throw new RangeError(`Restart intensity needs periodMs > 0, got "${periodMs}"`);
  }
  const inWindow = historyMs.filter((t) => t > nowMs - periodMs && t <= nowMs);
  if (inWindow.length >= maxRestarts) return { allowed: false, historyMs: inWindow };
  return { allowed: true, historyMs: [...inWindow, nowMs] };
}
