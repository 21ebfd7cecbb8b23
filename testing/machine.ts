/**
 * Test fixture: a whole machine in-process (simulated hardware, real NATS,
 * real HTTP), at high clock speed, with helpers to walk an order through the
 * kiosk API.
 */
import { type MachineOptions, type RunningMachine, startMachine } from "../controller/machine.ts";
import { Part } from "../controller/settings.ts";
import { sharedNatsUrl, waitFor } from "./nats.ts";

/** A machine under test and its HTTP helpers. */
export interface TestMachine extends RunningMachine {
  machineId: string;
  logLines: string[];
  /** Calls the API; returns status and parsed JSON body. */
  http(method: string, path: string, body?: unknown, token?: string): Promise<{
    status: number;
    body: Record<string, unknown>;
  }>;
  /** Polls the order's status until it is `status` (or one of them). */
  waitStatus(
    orderId: string,
    status: string | string[],
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  dispose(): Promise<void>;
}

/** Options of {@linkcode startTestMachine}. */
export interface TestMachineOptions extends MachineOptions {
  speed?: number;
  natsUrl?: string;
  dataDir?: string;
  machineId?: string;
}

/** The technician token of test machines. */
export const testTechToken = "tech-token-for-tests";

/** Starts a machine with a fresh id and data folder. */
export async function startTestMachine(options: TestMachineOptions = {}): Promise<TestMachine> {
  const machineId = options.machineId ?? `t-${crypto.randomUUID().slice(0, 8)}`;
  const dataDir = options.dataDir ?? await Deno.makeTempDir({ prefix: "fornax-machine-" });
  const logLines: string[] = [];
  const machine = await startMachine({
    natsUrl: options.natsUrl ?? sharedNatsUrl,
    machineId,
    port: 0,
    techToken: testTechToken,
    dataDir,
    speed: options.speed ?? 1000,
    only: [...Part.options],
  }, { ...options, logSink: (line) => logLines.push(line) });
  const http = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await fetch(`${machine.apiUrl}${path.replace("{m}", machineId)}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(body === undefined
        ? {}
        : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : {} };
  };
  return {
    ...machine,
    machineId,
    logLines,
    http,
    waitStatus: (orderId, status, timeoutMs = 20_000) => {
      const wanted = Array.isArray(status) ? status : [status];
      return waitFor(`order ${orderId} to be ${wanted.join("|")}`, async () => {
        const r = await http("GET", `/api/v1/order/${orderId}/status`);
        return wanted.includes(String(r.body.status)) ? r.body : undefined;
      }, timeoutMs);
    },
    dispose: async () => {
      await machine.stop();
      if (!options.dataDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}
