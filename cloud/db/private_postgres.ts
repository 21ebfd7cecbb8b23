/**
 * A Postgres server of a test's own (initdb + pg_ctl on a free port in a
 * temporary folder), for tests that stop and start the database. initdb
 * refuses to run as root, so as root the server runs as the `postgres` user.
 */
import { join } from "node:path";

/** Where Debian puts the server binaries (`PG_BIN` overrides). */
export const pgBin = Deno.env.get("PG_BIN") ?? "/usr/lib/postgresql/15/bin";

/** A private Postgres server. */
export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres`. */
  url: string;
  port: number;
  /** Stops the server at once (`-m immediate`, as a crash would), waiting for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its folder. */
  dispose(): Promise<void>;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function run(cmd: string, args: string[], asUser: string | null): Promise<void> {
  const [program, argv] = asUser
    ? ["runuser", ["-u", asUser, "--", join(pgBin, cmd), ...args]]
    : [join(pgBin, cmd), args];
  const out = await new Deno.Command(program, { args: argv, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd} failed with code ${out.code}: ${err}`);
  }
}

async function uidOf(user: string): Promise<{ uid: number; gid: number }> {
  const out = await new Deno.Command("id", { args: [user], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const uid = Number(/uid=(\d+)/.exec(text)?.[1]);
  const gid = Number(/gid=(\d+)/.exec(text)?.[1]);
  if (!out.success || !Number.isInteger(uid)) throw new Error(`No user "${user}" to run Postgres`);
  return { uid, gid };
}

/**
 * Creates and starts a private Postgres (trust auth, fsync off: a test server).
 *
 * @throws {Error} When initdb or pg_ctl fails.
 */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "fornax-pg-" });
  const data = join(dir, "data");
  const asUser = Deno.uid() === 0 ? "postgres" : null;
  if (asUser) {
    const { uid, gid } = await uidOf(asUser);
    await Deno.chown(dir, uid, gid);
  }
  await run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"], asUser);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () =>
    run("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"], asUser);
  const stop = () => run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"], asUser);
  await start();
  let running = true;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (!running) return;
      running = false;
      await stop();
    },
    async start() {
      if (running) return;
      await start();
      running = true;
    },
    async dispose() {
      if (running) await stop().catch(() => {});
      running = false;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
