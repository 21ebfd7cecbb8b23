/**
 * The typed layer actors use: publish and subscribe to declared events, serve
 * and call declared commands. Everything that enters is validated; a bad
 * message is answered with an error or counted and logged, never thrown.
 */
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { Random } from "../random/random.ts";
import {
  type CommandDef,
  type Envelope,
  type EventDef,
  fail,
  type Result,
} from "../protocol/define.ts";
import {
  type Bus,
  BusClosedError,
  BusTimeoutError,
  NoRespondersError,
  type Unsubscribe,
} from "./bus.ts";

/** What a typed bus needs besides the transport. */
export interface TypedBusContext {
  clock: Clock;
  random: Random;
  log: Logger;
  /** The machine this process speaks for. */
  machineId: string;
}

/** Options of a request. */
export interface RequestOptions {
  /** Deadline in clock ms (default 2000). */
  timeoutMs?: number;
  /** Target machine (default: our own). */
  machineId?: string;
  orderId?: string;
}

/** Counters of what was refused at the door. */
export interface BusStats {
  badEvents: number;
  badRequests: number;
  badReplies: number;
}

/** Typed publish/subscribe and request/reply over a `Bus`. */
export class TypedBus {
  /** What was refused at the door. */
  readonly stats: BusStats = { badEvents: 0, badRequests: 0, badReplies: 0 };

  /** Wraps `bus` for the machine in `ctx`. */
  constructor(readonly bus: Bus, readonly ctx: TypedBusContext) {}

  /** The machine this bus speaks for. */
  get machineId(): string {
    return this.ctx.machineId;
  }

  private envelope(orderId: string | undefined, machineId = this.ctx.machineId): Envelope {
    return {
      id: this.ctx.random.uuid(),
      machineId,
      ts: this.ctx.clock.now(),
      ...(orderId ? { orderId } : {}),
    };
  }

  /** Publishes `payload` on our machine's subject of `def`. */
  publish<P>(def: EventDef<P>, payload: P, orderId?: string): Envelope & P {
    const msg = { ...this.envelope(orderId), ...payload } as Envelope & P;
    try {
      this.bus.publish(def.subject(this.ctx.machineId), def.encode(msg));
    } catch (err) {
      // A closed bus during shutdown is expected; anything else is our bug.
      if (!(err instanceof BusClosedError)) throw err;
    }
    return msg;
  }

  /**
   * Subscribes to `def` for one machine (or `*` for the fleet); invalid
   * messages are counted and logged and never reach `handler`.
   */
  subscribe<P>(
    def: EventDef<P>,
    machineId: string,
    handler: (msg: Envelope & P) => void,
    options?: { queue?: string },
  ): Unsubscribe {
    const subject = def.subject(machineId);
    return this.bus.subscribe(subject, (raw) => {
      const decoded = def.decode(raw.data);
      if (!decoded.ok) {
        this.stats.badEvents++;
        this.ctx.log.log("warn", "bad event dropped", {
          subject: raw.subject,
          error: decoded.error,
        });
        return;
      }
      try {
        handler(decoded.value);
      } catch (err) {
        this.ctx.log.log("error", "event handler failed", {
          subject: raw.subject,
          err: String(err),
        });
      }
    }, options);
  }

  /**
   * Serves `def` for our machine. A bad request gets a BAD_REQUEST reply naming
   * the field; a throwing handler gets INTERNAL; neither reaches state.
   */
  serve<Q, R>(
    def: CommandDef<Q, R>,
    handler: (req: Envelope & Q) => Result<R> | Promise<Result<R>>,
    options?: { queue?: string },
  ): Unsubscribe {
    return this.bus.subscribe(def.subject(this.ctx.machineId), (raw) => {
      const respond = raw.respond;
      const reply = (result: Result<R>, orderId?: string) => {
        if (!respond) return;
        const msg = { ...this.envelope(orderId), ...result } as Envelope & Result<R>;
        try {
          respond(def.encodeReply(msg));
        } catch (err) {
          this.ctx.log.log("error", "reply failed validation", {
            subject: raw.subject,
            err: String(err),
          });
          respond(def.encodeReply(
            { ...this.envelope(orderId), ...fail("INTERNAL", "Reply failed validation") } as
              & Envelope
              & Result<R>,
          ));
        }
      };
      const decoded = def.decodeRequest(raw.data);
      if (!decoded.ok) {
        this.stats.badRequests++;
        this.ctx.log.log("warn", "bad request refused", {
          subject: raw.subject,
          error: decoded.error,
        });
        return reply(fail("BAD_REQUEST", decoded.error));
      }
      const req = decoded.value;
      Promise.resolve()
        .then(() => handler(req))
        .then(
          (result) => reply(result, req.orderId),
          (err: unknown) => {
            this.ctx.log.log("error", "command handler failed", {
              subject: raw.subject,
              err: String(err),
            });
            reply(fail("INTERNAL", `Handler failed: ${String(err)}`), req.orderId);
          },
        );
    }, options);
  }

  /**
   * Calls `def` and resolves with its result; transport failures become
   * TIMEOUT or UNAVAILABLE results, so callers handle one shape.
   */
  async request<Q, R>(
    def: CommandDef<Q, R>,
    payload: Q,
    options: RequestOptions = {},
  ): Promise<Result<R>> {
    const target = options.machineId ?? this.ctx.machineId;
    const orderId = options.orderId ??
      (payload as { orderId?: unknown }).orderId as string | undefined;
    const msg = { ...this.envelope(orderId), ...payload } as Envelope & Q;
    const timeoutMs = options.timeoutMs ?? 2000;
    const subject = def.subject(target);
    let data: Uint8Array;
    try {
      data = await this.bus.request(subject, def.encodeRequest(msg), timeoutMs);
    } catch (err) {
      if (err instanceof BusTimeoutError) return fail("TIMEOUT", err.message);
      if (err instanceof NoRespondersError) {
        return fail("UNAVAILABLE", `${def.component} is not answering on "${subject}"`);
      }
      if (err instanceof BusClosedError) return fail("UNAVAILABLE", err.message);
      throw err;
    }
    const decoded = def.decodeReply(data);
    if (!decoded.ok) {
      this.stats.badReplies++;
      return fail("INTERNAL", `Bad reply on "${subject}": ${decoded.error}`);
    }
    const reply = decoded.value as unknown as Result<R>;
    return reply.ok ? { ok: true, value: reply.value } : { ok: false, error: reply.error };
  }
}
