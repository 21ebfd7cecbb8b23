/**
 * CPU time of the fleet bench's parts, from Linux `/proc`: this thread, a
 * process, the Postgres backends of one database, the nats-server behind a
 * URL. On a shared 2-core machine the events per second move with whatever
 * else runs; CPU per event says what each part costs. Elsewhere every figure
 * is NaN and the bench prints none.
 */
import type { Database } from "../cloud/db/database.ts";

/** utime + stime of a `/proc/…/stat` line, in seconds. */
function statCpuS(path: string): number {
  try {
    const stat = Deno.readTextFileSync(path);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds this thread has used. */
export function threadCpuS(): number {
  return statCpuS("/proc/thread-self/stat");
}

/** CPU seconds process `pid` has used. */
export function processCpuS(pid: number): number {
  return statCpuS(`/proc/${pid}/stat`);
}

/** The pid of the nats-server listening on `url`'s port, or null when it is not found here. */
export function natsServerPid(url: string): number | null {
  const port = new URL(url.replace(/^nats:/, "http:")).port || "4222";
  const found: { pid: number; args: string[] }[] = [];
  try {
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const args = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).split("\0");
        if (args[0]?.endsWith("nats-server")) found.push({ pid: Number(e.name), args });
      } catch {
        // Gone meanwhile.
      }
    }
  } catch {
    return null;
  }
  const onPort = found.filter(({ args }) =>
    args.some((a, i) =>
      a === `--port=${port}` || (["-p", "--port"].includes(a) && args[i + 1] === port)
    )
  );
  const pick = onPort.length === 1 ? onPort : found.length === 1 ? found : [];
  return pick[0]?.pid ?? null;
}

/**
 * The CPU the Postgres backends of `db`'s database use, sampled while they
 * live (a backend's time is lost when it exits): call {@linkcode sample}
 * often and once more before the connections close.
 */
export class PostgresCpu {
  private readonly seen = new Map<number, { first: number; last: number }>();
  /** Watches the backends of `db`'s database. */
  constructor(private readonly db: Database) {}
  /** Reads the CPU time of every backend of the database now. */
  async sample(): Promise<void> {
    const rows = await this.db.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
    );
    for (const { pid } of rows) {
      const s = processCpuS(pid);
      if (Number.isNaN(s)) continue;
      const known = this.seen.get(pid);
      if (known) known.last = s;
      else this.seen.set(pid, { first: s, last: s });
    }
  }
  /** CPU seconds used since each backend was first sampled, and forgets them. */
  take(): number {
    let sum = 0;
    for (const { first, last } of this.seen.values()) sum += last - first;
    this.seen.clear();
    return sum;
  }
}
