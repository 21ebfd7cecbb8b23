/** The `Bus` on a real nats-server through @nats-io/transport-node. */
import { connect, type NatsConnection, RequestError } from "@nats-io/transport-node";
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import { type Bus, BusClosedError, BusTimeoutError, NoRespondersError } from "./bus.ts";

/** Options of {@linkcode connectNatsBus}. */
export interface NatsBusOptions {
  url: string;
  clock: Clock & { speed?: number };
  log: Logger;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /** How long the first connect may take, in wall ms (default 2000). */
  connectTimeoutMs?: number;
  /** Least wall time a request waits for its reply (default 250). */
  minWallTimeoutMs?: number;
}

/** A `Bus` over NATS, with its connection for JetStream users. */
export interface NatsBus extends Bus {
  /** The underlying connection. */
  readonly nc: NatsConnection;
}

/**
 * Connects to NATS and keeps reconnecting forever: the client resubscribes on
 * reconnect and buffers publishes meanwhile, so actors ride out a server restart.
 *
 * @throws {Error} When the first connection cannot be made.
 */
export async function connectNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const { clock, log } = options;
  const nc = await connect({
    servers: options.url,
    name: options.name ?? "fornax",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    timeout: options.connectTimeoutMs ?? 2000,
    pingInterval: 5000,
  });
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect") {
        log.log("warn", `nats ${s.type}`, { server: s.server });
      }
    }
  })().catch(() => {});
  let closed = false;
  // A request's deadline runs on our clock; NATS's own timeout only backstops it
  // so that the client's pending-reply table is bounded. At high clock speeds a
  // deadline of a few clock seconds is a few wall milliseconds, less than a
  // loaded machine may need for a round trip: deadlines never go below
  // `minWallTimeoutMs` of wall time.
  const speed = Math.max(1, options.clock.speed ?? 1);
  const minWallTimeoutMs = options.minWallTimeoutMs ?? 250;
  return {
    nc,
    publish(subject, data) {
      if (closed) throw new BusClosedError();
      nc.publish(subject, data);
    },
    subscribe(pattern, handler, opts) {
      const sub = nc.subscribe(pattern, {
        ...(opts?.queue ? { queue: opts.queue } : {}),
        callback: (err, msg) => {
          if (err) return;
          handler({
            subject: msg.subject,
            data: msg.data,
            ...(msg.reply ? { respond: (data: Uint8Array) => void msg.respond(data) } : {}),
          });
        },
      });
      return () => sub.unsubscribe();
    },
    request(subject, data, timeoutMs) {
      if (closed) return Promise.reject(new BusClosedError());
      const deadlineMs = Math.max(timeoutMs, minWallTimeoutMs * speed);
      return new Promise((resolve, reject) => {
        const timer = clock.setTimeout(
          () => reject(new BusTimeoutError(subject, timeoutMs)),
          deadlineMs,
        );
        nc.request(subject, data, { timeout: Math.ceil(deadlineMs / speed) + 1000 }).then(
          (msg) => {
            clock.clearTimeout(timer);
            resolve(msg.data);
          },
          (err: unknown) => {
            clock.clearTimeout(timer);
            if (err instanceof RequestError && err.isNoResponders()) {
              reject(new NoRespondersError(subject, { cause: err }));
            } else if (closed) reject(new BusClosedError({ cause: err }));
            else reject(new BusTimeoutError(subject, timeoutMs, { cause: err }));
          },
        );
      });
    },
    flush: () => nc.flush(),
    async close() {
      if (closed) return;
      closed = true;
      await nc.drain().catch(() => nc.close());
    },
  };
}
