/**
 * Test fixture: the controller as `deno task start` runs it, in a child
 * process that a test can kill, restart or run beside another one.
 */
import { testTechToken } from "./machine.ts";
import { freePort, sharedNatsUrl, waitFor } from "./nats.ts";

const mainTs = new URL("../controller/main.ts", import.meta.url).pathname;

/** A controller child process. */
export interface ControllerProcess {
  /** The API's base URL, when this process serves it. */
  base: string | null;
  /** SIGKILL: no cleanup, as a power loss. */
  kill(): Promise<void>;
  /** SIGTERM: an orderly stop. */
  stop(): Promise<void>;
}

/**
 * The environment of a controller for `machineId` on the shared nats-server,
 * keeping its data in `dataDir` and serving its API on a free port.
 */
export function controllerEnv(machineId: string, dataDir: string): Record<string, string> {
  return {
    NATS_URL: sharedNatsUrl,
    MACHINE_ID: machineId,
    PORT: String(freePort()),
    TECH_TOKEN: testTechToken,
    FORNAX_DATA: dataDir,
  };
}

/** POSTs `body` as JSON to the API at `base` and returns the parsed answer. */
export async function postJson(
  base: string,
  path: string,
  body: unknown,
): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return await res.json() as Record<string, unknown>;
}

/**
 * Spawns `controller/main.ts` with `env` and `args`; when the process serves
 * the API (no `--only`, or one that includes `api`), waits until it answers.
 */
export async function spawnController(
  env: Record<string, string>,
  args: string[] = ["--speed", "200"],
): Promise<ControllerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", mainTs, ...args],
    env,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const only = args[args.indexOf("--only") + 1];
  const servesApi = !args.includes("--only") || (only ?? "").split(",").includes("api");
  const base = servesApi ? `http://127.0.0.1:${env.PORT}` : null;
  if (base) {
    await waitFor("the controller's API", async () => {
      try {
        const r = await fetch(`${base}/health`);
        await r.body?.cancel();
        return r.ok ? true : undefined;
      } catch {
        return undefined;
      }
    }, 30_000);
  }
  return {
    base,
    async kill() {
      child.kill("SIGKILL");
      await child.status;
    },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
