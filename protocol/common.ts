/**
 * Subject families every component has: a heartbeat, alerts, and the restart
 * command its host answers. Declared once here for all components.
 */
import { z } from "zod";
import { Alert } from "./entities.ts";
import { type CommandDef, Component, defineCommand, defineEvent, type EventDef } from "./define.ts";

/** One hosted actor's beat. */
const Beat = z.object({
  component: Component,
  /** The actor's state value, flattened to a string. */
  state: z.string(),
  /** False when the actor stopped or errored. */
  alive: z.boolean(),
  /** Restarts of this actor since the process started. */
  restarts: z.number().int().nonnegative(),
});
/** One hosted actor's beat. */
export type Beat = z.infer<typeof Beat>;
/** Alert payload: any component may raise one; the supervisor collects them. */
const alertShape = Alert.omit({ machineId: true }).shape;

type AlertPayload = z.infer<z.ZodObject<typeof alertShape>>;
type RestartReply = { component: Component; restarts: number };

function perComponent<T>(make: (c: Component) => T): Record<Component, T> {
  return Object.fromEntries(Component.options.map((c) => [c, make(c)])) as Record<Component, T>;
}

/**
 * `fornax.<m>.host.evt.heartbeat`: each process beats once for all the actors
 * it hosts, so a machine's heartbeats cost one message a period per process.
 */
export const heartbeat = defineEvent("host", "heartbeat", {
  /** The process, named by the components it hosts. */
  host: z.string().min(1).max(200),
  beats: z.array(Beat).min(1).max(Component.options.length),
});

/** `fornax.<m>.<component>.evt.alert`, one per component. */
export const alert: Record<Component, EventDef<AlertPayload>> = perComponent((c) =>
  defineEvent(c, "alert", alertShape)
);

/** `fornax.<m>.<component>.cmd.restart`: answered by the host, not the actor. */
export const restart: Record<Component, CommandDef<Record<never, never>, RestartReply>> =
  perComponent((c) =>
    defineCommand(c, "restart", {}, z.object({ component: Component, restarts: z.number() }))
  );
