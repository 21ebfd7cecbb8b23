/**
 * Test fixture: the controller as `deno task start` runs it, in a child
 * process that a test can kill, restart or run beside another one.
 */
import { waitFor } from "./nats.ts";

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
