/**
 * The run's event log: JSON lines, one per bus message sent or lost and per
 * event of the world (customers, technicians, faults) and line the actors
 * log, in the order they happened, stamped with virtual time. Its SHA-256 is
 * the run's fingerprint: same scenario and seed, same bytes.
 */
import { createHash } from "node:crypto";

const encoder = new TextEncoder();

/** Where the log's bytes go besides the hash. */
export interface LogFileSink {
  write(chunk: Uint8Array): void;
  close(): void;
}

/** A file sink that writes in chunks of about 1 MiB. */
export function fileSink(path: string): LogFileSink {
  const file = Deno.openSync(path, { write: true, create: true, truncate: true });
  return {
    write(chunk) {
      let off = 0;
      while (off < chunk.length) off += file.writeSync(chunk.subarray(off));
    },
    close: () => file.close(),
  };
}

/** The event log of one run. */
export class EventLog {
  private readonly hash = createHash("sha256");
  private parts: string[] = [];
  private pending = 0;
  private count = 0;
  private bytesOut = 0;
  private closed = false;

  /** Hashes every line and writes it to `sink` when given. */
  constructor(private readonly sink: LogFileSink | null = null) {}

  /** Lines so far. */
  get lines(): number {
    return this.count;
  }

  /** Bytes so far (flushed or not). */
  get bytes(): number {
    return this.bytesOut + this.pending;
  }

  /** Appends one line (without its newline); `line` must be one line of JSON. */
  write(line: string): void {
    if (this.closed) return;
    this.parts.push(line);
    this.pending += line.length + 1;
    this.count++;
    if (this.pending > 1 << 20) this.flush();
  }

  /** Appends a world event: `{"t":…,"k":"world","e":…,…fields}`. */
  event(timeMs: number, kind: string, fields: Record<string, unknown> = {}): void {
    this.write(JSON.stringify({ t: timeMs, k: "world", e: kind, ...fields }));
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    const bytes = encoder.encode(this.parts.join("\n") + "\n");
    this.parts = [];
    this.pending = 0;
    this.bytesOut += bytes.length;
    this.hash.update(bytes);
    this.sink?.write(bytes);
  }

  /** Flushes, closes the sink and returns the SHA-256 of every byte, in hex. */
  finish(): string {
    this.flush();
    this.closed = true;
    this.sink?.close();
    return this.hash.digest("hex");
  }
}
