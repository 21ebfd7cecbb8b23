/**
 * The transport seam: actors talk to a `Bus`, never to NATS directly, so the
 * same actor runs on a real nats-server or on the simulator's bus.
 */

/** A message as delivered to a subscriber. */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** Present when the sender waits for a reply. */
  respond?: (data: Uint8Array) => void;
}

/** Stops a subscription. */
export type Unsubscribe = () => void;

/** Options of {@linkcode Bus.subscribe}. */
export interface SubscribeOptions {
  /** Members of one queue group share the messages instead of each getting all. */
  queue?: string;
}

/** Publish/subscribe and request/reply with NATS subject semantics. */
export interface Bus {
  /** Publishes fire-and-forget; buffered while the transport reconnects. */
  publish(subject: string, data: Uint8Array): void;
  /** Subscribes to a subject pattern with `*` and `>` wildcards. */
  subscribe(
    pattern: string,
    handler: (msg: BusMessage) => void,
    options?: SubscribeOptions,
  ): Unsubscribe;
  /**
   * Sends a request and resolves with the first reply.
   *
   * @throws {BusTimeoutError} When no reply arrives within `timeoutMs` clock ms.
   * @throws {NoRespondersError} When nobody subscribes to `subject`.
   * @throws {BusClosedError} When the bus is closed.
   */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Resolves once everything published so far reached the server. */
  flush(): Promise<void>;
  /** Closes the bus; pending requests reject with {@linkcode BusClosedError}. */
  close(): Promise<void>;
}

/** A request got no reply in time. */
export class BusTimeoutError extends Error {
  /** Creates the error for `subject`. */
  constructor(readonly subject: string, timeoutMs: number, options?: ErrorOptions) {
    super(`No reply on "${subject}" within ${timeoutMs} ms`, options);
    this.name = "BusTimeoutError";
  }
}

/** A request found nobody listening on its subject. */
export class NoRespondersError extends Error {
  /** Creates the error for `subject`. */
  constructor(readonly subject: string, options?: ErrorOptions) {
    super(`No responders on "${subject}"`, options);
    this.name = "NoRespondersError";
  }
}

/** The bus was closed. */
export class BusClosedError extends Error {
  /** Creates the error. */
  constructor(options?: ErrorOptions) {
    super("Bus is closed", options);
    this.name = "BusClosedError";
  }
}
