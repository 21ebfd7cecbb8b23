/**
 * Test fixtures on real NATS: a typed bus on the shared server with a fresh
 * machine id per test (so parallel tests never hear each other), and private
 * nats-servers that fault tests may stop and restart.
 */
import { createRealClock } from "../clock/clock.ts";
import { connectNatsBus, type NatsBus } from "../bus/nats_bus.ts";
import { TypedBus } from "../bus/typed_bus.ts";
import { createLogger, type Logger, type LogSink } from "../log/log.ts";
import { createCryptoRandom } from "../random/random.ts";

/** The shared server of this machine, or `NATS_URL`. */
export const sharedNatsUrl = Deno.env.get("NATS_URL") ?? "nats://127.0.0.1:4222";

/** A typed bus for one test. */
export interface TestBus {
  bus: TypedBus;
  raw: NatsBus;
  clock: ReturnType<typeof createRealClock>;
  machineId: string;
  log: Logger;
  /** Every log line written, for assertions (e.g. no card numbers). */
  logLines: string[];
  close(): Promise<void>;
}

/** Options of {@linkcode connectTestBus}. */
export interface TestBusOptions {
  url?: string;
  /** Clock speed (default 1). */
  speed?: number;
  machineId?: string;
  /** Also write log lines to stderr. */
  echoLogs?: boolean;
}

/** Connects a typed bus for a fresh machine id `t-<random>`. */
export async function connectTestBus(options: TestBusOptions = {}): Promise<TestBus> {
  const clock = createRealClock({ speed: options.speed ?? 1 });
  const random = createCryptoRandom();
  const logLines: string[] = [];
  const sink: LogSink = (line) => {
    logLines.push(line);
    if (options.echoLogs) console.error(line);
  };
  const log = createLogger({ clock, sink, level: "debug" });
  const machineId = options.machineId ?? `t-${random.uuid().slice(0, 8)}`;
  const raw = await connectNatsBus({ url: options.url ?? sharedNatsUrl, clock, log });
  const bus = new TypedBus(raw, { clock, random, log, machineId });
  return { bus, raw, clock, machineId, log, logLines, close: () => raw.close() };
}

/** A nats-server of a test's own. */
export interface PrivateNats {
  url: string;
  port: number;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and store. */
  start(): Promise<void>;
  /** Stops it for good and removes its store. */
  dispose(): Promise<void>;
}

/** Finds a free TCP port on loopback. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  throw new Error(`nats-server did not listen on port "${port}" within ${timeoutMs} ms`);
}

/** Starts a nats-server with JetStream on a free port and a temporary store. */
export async function startPrivateNats(): Promise<PrivateNats> {
  const port = freePort();
  const storeDir = await Deno.makeTempDir({ prefix: "fornax-nats-" });
  let child: Deno.ChildProcess | null = null;
  const start = async () => {
    child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port, 5000);
  };
  const stop = async () => {
    if (!child) return;
    const c: Deno.ChildProcess = child;
    child = null;
    c.kill("SIGTERM");
    await c.status;
  };
  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    stop,
    dispose: async () => {
      await stop();
      await Deno.remove(storeDir, { recursive: true }).catch(() => {});
    },
  };
}

/** Polls `check` every 10 ms until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
