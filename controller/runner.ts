/**
 * The host of a process's actors: starts them, publishes one heartbeat for
 * all of them every period, and answers the supervisor's restart command for
 * each. XState has no restart supervision; this host plus the supervisor
 * provide it.
 */
import type { TypedBus } from "../bus/typed_bus.ts";
import { type Clock, every } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { RunningActor } from "../actors/actor.ts";
import { heartbeat, restart } from "../protocol/common.ts";
import { type Component, ok } from "../protocol/define.ts";

/** How to start one component's actor (again). */
export interface ActorSpec {
  component: Component;
  start: () => RunningActor | Promise<RunningActor>;
}

/** The actors of one process. */
export interface ActorHost {
  /** The running actor of `component`, if hosted here. */
  get(component: Component): RunningActor | undefined;
  /** Stops heartbeats, restart service and every actor. */
  stop(): Promise<void>;
}

/**
 * Clock ms between an actor's heartbeats. The supervisor calls an actor dead
 * after three silent periods, so a hung process is caught within 15 s; the
 * safety chain never waits on this.
 */
export const defaultHeartbeatMs = 5000;

/** Starts `specs` in order and hosts them, beating every `heartbeatMs` clock ms. */
export async function hostActors(
  bus: TypedBus,
  clock: Clock,
  log: Logger,
  specs: ActorSpec[],
  heartbeatMs = defaultHeartbeatMs,
): Promise<ActorHost> {
  const running = new Map<Component, { actor: RunningActor; restarts: number }>();
  const stops: Array<() => void> = [];
  for (const spec of specs) {
    running.set(spec.component, { actor: await spec.start(), restarts: 0 });
    stops.push(bus.serve(restart[spec.component], async () => {
      const entry = running.get(spec.component)!;
      log.log("warn", "restarting actor", { component: spec.component });
      await entry.actor.stop().catch((err) =>
        log.log("error", "actor stop failed", { component: spec.component, err: String(err) })
      );
      entry.actor = await spec.start();
      entry.restarts++;
      return ok({ component: spec.component, restarts: entry.restarts });
    }));
  }
  const host = specs.map((s) => s.component).join(",");
  const beat = () => {
    const beats = [...running].map(([component, { actor, restarts }]) => {
      let state = "unknown";
      let alive = false;
      try {
        state = actor.state();
        alive = actor.alive();
      } catch (err) {
        log.log("error", "actor state unreadable", { component, err: String(err) });
      }
      return { component, state, alive, restarts };
    });
    if (beats.length > 0) bus.publish(heartbeat, { host, beats });
  };
  beat();
  stops.push(every(clock, heartbeatMs, beat));
  return {
    get: (component) => running.get(component)?.actor,
    async stop() {
      for (const s of stops) s();
      for (const { actor } of [...running.values()].reverse()) await actor.stop();
      running.clear();
    },
  };
}
