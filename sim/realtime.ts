/**
 * The same world in real time: a scenario played against the nats-server at
 * `NATS_URL` on wall-clock time (× speed), so that a supervisor, the kiosk and
 * the dashboard can watch the simulated machine live. Nothing here is
 * deterministic; bus faults (partitions, drops) need the simulated bus and are
 * skipped, everything else (customers, power losses, plant faults) happens.
 */
import { connectNatsBus, type NatsBus } from "../bus/nats_bus.ts";
import { type Clock, createRealClock, sleep } from "../clock/clock.ts";
import { silentLogger } from "../log/log.ts";
import type { Bus } from "../bus/bus.ts";
import type { ResolvedScenario } from "./scenario.ts";
import { EventLog } from "./world/event_log.ts";
import { runWorld, type WorldEnv } from "./world/world.ts";
import { formatSummary, summarize } from "./run.ts";
import { stopwatch } from "./world/stopwatch.ts";

/** Options of {@linkcode runRealtime}. */
export interface RealtimeOptions {
  resolved: ResolvedScenario;
  seed: number;
  /** How the scenario is named on the command line. */
  source: string;
  /** Clock ms per wall ms. */
  speed: number;
  natsUrl: string;
  json: boolean;
  /** Where status lines go (default stderr). */
  status?: (line: string) => void;
}

const encoder = new TextEncoder();

/** Moves every absolute time of `r` so that it starts at `startMs`. */
export function rebase(r: ResolvedScenario, startMs: number): ResolvedScenario {
  const shift = startMs - r.startMs;
  return {
    ...r,
    startMs,
    scenario: { ...r.scenario, start: new Date(startMs).toISOString() },
    stock: r.stock.map((l) => ({ ...l, expiresAt: l.expiresAt + shift })),
  };
}

/** An environment on a real nats-server and a real clock at `speed`. */
export function realEnv(natsUrl: string, clock: Clock & { speed: number }) {
  const opened: NatsBus[] = [];
  const connect = async (name: string): Promise<Bus> => {
    const bus = await connectNatsBus({
      url: natsUrl,
      clock,
      log: silentLogger,
      name: `fornax-sim-${name}`,
    });
    opened.push(bus);
    return bus;
  };
  return (o: { machineId: string }): Promise<WorldEnv> =>
    Promise.resolve({
      clock,
      connect,
      busFaults: null,
      async observe(fn) {
        const watcher = await connect("observer");
        watcher.subscribe(`fornax.${o.machineId}.>`, (msg) => {
          fn({
            type: "send",
            timeMs: clock.now(),
            subject: msg.subject,
            data: msg.data,
            connection: "nats",
          });
        });
      },
      runUntil: async (t) => {
        const ms = t - clock.now();
        if (ms > 0) await sleep(clock, ms);
      },
      drive: (p) => p,
      timersFired: () => 0,
      close: async () => {
        for (const b of opened.splice(0)) await b.close().catch(() => {});
      },
    });
}

/** Plays the scenario in real time; resolves with the exit status. */
export async function runRealtime(o: RealtimeOptions): Promise<number> {
  const status = o.status ?? ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const clock = createRealClock({ speed: o.speed });
  const resolved = rebase(o.resolved, clock.now());
  const machineId = resolved.scenario.machine.machineId;
  status(
    `sim: ${resolved.scenario.name} in real time ×${o.speed} on ${o.natsUrl}: watch fornax.${machineId}.> (${
      (resolved.durationMs / o.speed / 60_000).toFixed(1)
    } wall minutes of customers)`,
  );
  const log = new EventLog(null);
  let lastStep = -1;
  const elapsedMs = stopwatch();
  const world = await runWorld({
    resolved,
    seed: o.seed,
    mode: resolved.scenario.mode,
    log,
    env: realEnv(o.natsUrl, clock),
    onProgress: (fraction, simulatedMs) => {
      const step = Math.floor(fraction * 20);
      if (step === lastStep) return;
      lastStep = step;
      status(`sim: ${(fraction * 100).toFixed(0)}% (${(simulatedMs / 3_600_000).toFixed(2)} h)`);
    },
  });
  const summary = summarize(world, log, {
    source: o.source,
    scenario: resolved.scenario.name,
    seed: o.seed,
    mode: resolved.scenario.mode,
    defaultMode: resolved.scenario.mode,
    idempotence: false,
    logPath: null,
    wallMs: elapsedMs(),
  });
  summary.replay += ` --realtime --speed ${o.speed}`;
  if (o.json) console.log(JSON.stringify(summary));
  else console.log(formatSummary(summary));
  return summary.violations.length > 0 ? 1 : 0;
}
