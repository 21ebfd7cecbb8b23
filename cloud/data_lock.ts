/**
 * PGlite is one process's database: a second process opening the same data
 * folder corrupts it. The cloud and the CLI therefore take an exclusive lock
 * (flock) on `cloud-pglite.lock` in the data folder before opening PGlite;
 * the lock goes with the process, so a crash never leaves it stale.
 */
import { join } from "node:path";

/** The data folder is held by another process. */
export class DataInUseError extends Error {
  /** Creates the error with a sentence naming the folder and its holder. */
  constructor(message: string) {
    super(message);
    this.name = "DataInUseError";
  }
}

/** A held lock. */
export interface DataLock {
  release(): void;
}

/**
 * Locks the PGlite store of `dataDir` for this process, writing `holder`
 * (e.g. `deno task cloud, pid 123`) into the lock file for whoever finds it held.
 *
 * @throws {DataInUseError} When another process holds it.
 */
export function lockDataDir(dataDir: string, holder: string): DataLock {
  Deno.mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "cloud-pglite.lock");
  const file = Deno.openSync(path, { read: true, write: true, create: true });
  if (!file.tryLockSync(true)) {
    file.close();
    let who = "another process";
    try {
      who = Deno.readTextFileSync(path).trim() || who;
    } catch {
      // Unreadable: the generic name will do.
    }
    throw new DataInUseError(
      `PGlite data folder "${dataDir}" is in use by ${who}; stop it first, or set DATABASE_URL ` +
        "to share a Postgres server",
    );
  }
  file.truncateSync(0);
  file.writeSync(new TextEncoder().encode(`${holder}\n`));
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      file.close();
    },
  };
}
