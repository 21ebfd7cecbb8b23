/**
 * Smart preheating (seed 003 §6.3): hot while orders wait, warm during the
 * lunch and dinner peaks, off otherwise. A technician's manual standby target
 * holds until the policy itself would change its mind.
 */

/** The temperatures the policy chooses between. */
export interface PreheatTargets {
  /** While orders are queued (default 220). */
  activeC: number;
  /** During peak hours with no order queued (default 150). */
  standbyC: number;
}

/** The policy's default temperatures. */
export const defaultPreheatTargets: PreheatTargets = { activeC: 220, standbyC: 150 };

/** A technician's standby target and the policy target it overrode. */
export interface ManualTarget {
  targetC: number;
  /** The policy's choice when the technician set it; a new choice ends the override. */
  overriddenC: number;
}

/**
 * True during 11:00–14:59 and 17:00–21:59 local time, where local time is the
 * clock's UTC plus `utcOffsetMin` (the seed's `11 <= hour <= 14 or 17 <= hour <= 21`).
 */
export function isPeakHour(nowMs: number, utcOffsetMin: number): boolean {
  const dayMs = 86_400_000;
  const localMs = ((nowMs + utcOffsetMin * 60_000) % dayMs + dayMs) % dayMs;
  const hour = Math.floor(localMs / 3_600_000);
  return (hour >= 11 && hour <= 14) || (hour >= 17 && hour <= 21);
}

/** The policy's target: active when orders wait, standby at peak hours, else 0 (off). */
export function policyTargetC(
  queueLength: number,
  nowMs: number,
  utcOffsetMin: number,
  targets: PreheatTargets = defaultPreheatTargets,
): number {
  if (queueLength > 0) return targets.activeC;
  return isPeakHour(nowMs, utcOffsetMin) ? targets.standbyC : 0;
}

/**
 * The standby target given the policy's choice and a manual override: the
 * override wins until the policy's choice differs from the one it overrode,
 * then it lapses (returned as null).
 */
export function standbyTargetC(
  policyC: number,
  manual: ManualTarget | null,
): { targetC: number; manual: ManualTarget | null } {
  if (manual && manual.overriddenC === policyC) return { targetC: manual.targetC, manual };
  return { targetC: policyC, manual: null };
}
