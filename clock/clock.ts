/**
 * The only module that reads wall time or arms timers. Everything else takes a
 * `Clock`, so the same code runs in real time, scaled time or virtual time.
 */
import { setImmediate } from "node:timers";

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

interface Timer {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A binary min-heap of timers by (due, seq). Hand-written: it is twenty lines,
 * and the order of equal due times must be insertion order for determinism.
 */
class TimerHeap {
  private readonly items: Timer[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): Timer | undefined {
    return this.items[0];
  }

  push(t: Timer): void {
    const a = this.items;
    a.push(t);
    for (let i = a.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Timer | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Timer, b: Timer): boolean {
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/**
 * A clock on wall time, optionally running `speed` times faster.
 *
 * Its time never passes a timer that has not fired. When the event loop was
 * busy (a GC pause, a burst of work) and timers are overdue, time stands at
 * the last fired timer while the overdue ones fire in due order, one per
 * macrotask so promise chains and I/O run between them; then it jumps back to
 * wall time. At `--speed 1000` a 20 ms pause is 20 s of machine time: without
 * this, every deadline armed in that window would fire before the operations
 * it guards, and a chain of short timers would stretch to the wall timers'
 * millisecond granularity.
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
  const wall = () => epoch0 + (performance.now() - perf0) * speed;
  const heap = new TimerHeap();
  let seq = 0;
  let last = epoch0;
  let wake: ReturnType<typeof setTimeout> | undefined;
  let wakeDue = Infinity;
  let immediate = false;
  // While a timer's callback and the microtasks it queued run, time stands at
  // its due time, so a chain re-armed from there keeps its place in line.
  let frozen = false;
  const thaw = () => {
    frozen = false;
  };

  const earliest = () => {
    while (heap.peek()?.cancelled) heap.pop();
    return heap.peek();
  };
  const now = () => {
    if (frozen) return last;
    const next = earliest();
    if (!next || next.due > wall()) last = Math.max(last, wall());
    return last;
  };
  const schedule = () => {
    const next = earliest();
    if (immediate) return;
    if (next && next.due === wakeDue && wake !== undefined) return;
    if (wake !== undefined) clearTimeout(wake);
    wake = undefined;
    wakeDue = Infinity;
    if (!next) return;
    if (next.due <= wall()) {
      // setImmediate, unlike setTimeout(0), is not clamped to milliseconds.
      immediate = true;
      setImmediate(fire);
      return;
    }
    wakeDue = next.due;
    wake = setTimeout(fire, Math.max(0, (next.due - wall()) / speed));
  };
  const fire = () => {
    immediate = false;
    wake = undefined;
    wakeDue = Infinity;
    const next = earliest();
    if (next && next.due <= wall()) {
      heap.pop();
      last = Math.max(last, next.due);
      if (!frozen) {
        frozen = true;
        setImmediate(thaw);
      }
      try {
        next.fn();
      } catch (err) {
        reportError(err);
      }
    }
    schedule();
  };
  return {
    speed,
    now: () => Math.floor(now()),
    setTimeout: (fn, ms) => {
      const timer: Timer = { due: now() + Math.max(0, ms), seq: seq++, fn, cancelled: false };
      heap.push(timer);
      schedule();
      return timer;
    },
    clearTimeout: (handle) => {
      const timer = handle as Timer | undefined;
      if (!timer || timer.cancelled) return;
      timer.cancelled = true;
      schedule();
    },
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
