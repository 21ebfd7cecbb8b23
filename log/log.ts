/**
 * Structured logs: one JSON object per line on stderr, stamped with the clock's
 * time so simulated runs log simulated time.
 */
import type { Clock } from "../clock/clock.ts";

/** Severity of a log line. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** A structured logger bound to one component. */
export interface Logger {
  /** Logs at `level` with a message and fields. */
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines also carry `component`. */
  child(component: string): Logger;
}

/** Where log lines go; the default writes JSON lines to stderr. */
export type LogSink = (line: string) => void;

const encoder = new TextEncoder();
const stderrSink: LogSink = (line) => Deno.stderr.writeSync(encoder.encode(line + "\n"));

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  clock: Clock;
  /** Lowest level written (default "info"). */
  level?: LogLevel;
  sink?: LogSink;
  component?: string;
}

/** Creates a logger writing to `sink` (stderr by default). */
export function createLogger(options: LoggerOptions): Logger {
  const min = rank[options.level ?? "info"];
  const sink = options.sink ?? stderrSink;
  const make = (component: string | undefined): Logger => ({
    log(level, msg, fields) {
      if (rank[level] < min) return;
      sink(JSON.stringify({ ts: options.clock.now(), level, component, msg, ...fields }));
    },
    child: (name) => make(component ? `${component}.${name}` : name),
  });
  return make(options.component);
}

/** A logger that drops everything (for benches). */
export const silentLogger: Logger = { log() {}, child: () => silentLogger };
