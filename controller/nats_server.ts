/**
 * A nats-server of the controller's own, for a machine where nothing answers
 * at `NATS_URL`: JetStream on, its store in the data folder, stopped on exit.
 */
import { join } from "node:path";

/** A nats-server child process. */
export interface OwnNatsServer {
  stop(): Promise<void>;
}

async function answers(hostname: string, port: number, timeoutMs: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname, port, signal: AbortSignal.timeout(timeoutMs) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

function hasNatsServer(): boolean {
  try {
    return new Deno.Command("nats-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

/**
 * Returns null when something answers at `url`; otherwise starts nats-server
 * there and waits until it listens.
 *
 * @throws {Error} When nothing answers and nats-server is not installed or does not start.
 */
export async function ensureNats(url: string, dataDir: string): Promise<OwnNatsServer | null> {
  const { hostname, port: portText } = new URL(url.replace(/^nats:/, "http:"));
  const port = Number(portText || 4222);
  if (await answers(hostname, port, 1000)) return null;
  if (!hasNatsServer()) {
    throw new Error(`Nothing answers at NATS_URL "${url}" and nats-server is not installed`);
  }
  const storeDir = join(dataDir, "nats");
  await Deno.mkdir(storeDir, { recursive: true });
  const child = new Deno.Command("nats-server", {
    args: ["-a", hostname, "-p", String(port), "-js", "-sd", storeDir],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    if (await answers(hostname, port, 200)) {
      child.stderr.cancel().catch(() => {});
      return {
        async stop() {
          child.kill("SIGTERM");
          await child.status;
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  const err = new TextDecoder().decode((await child.output()).stderr).trim();
  throw new Error(`nats-server did not start at "${url}": ${err || "no output"}`);
}
