/**
 * The simulator's bus: NATS subject semantics (exact subjects, `*` and `>`
 * wildcards, request/reply, no-responders, queue groups) in one process, with
 * every delivery scheduled on the injected clock and every choice drawn from
 * the injected `Random`, so a seed replays byte for byte.
 *
 * Model: a publish reaches the "server" at once (routing and random draws
 * happen in the publish call); each delivery to a subscriber is a leg of its
 * own that may be dropped, duplicated or delayed. Like NATS over TCP, what one
 * connection sends to another arrives in order: a leg never lands before an
 * earlier leg between the same two connections. Delivery is never synchronous:
 * a handler runs in a clock timer, at delay 0 when no delay is injected.
 */
import type { Clock } from "../clock/clock.ts";
import type { Random } from "../random/random.ts";
import {
  type Bus,
  BusClosedError,
  type BusMessage,
  BusTimeoutError,
  NoRespondersError,
  type SubscribeOptions,
  type Unsubscribe,
} from "../bus/bus.ts";

/** Faults applied to every delivery leg (a subscriber's copy, or a reply). */
export interface BusFaultOptions {
  /** Probability that a leg is lost, in [0, 1] (default 0). */
  dropProbability?: number;
  /** Probability that a leg arrives twice, in [0, 1] (default 0). */
  duplicateProbability?: number;
  /**
   * Delay of each leg in clock ms: uniform integers in [minMs, maxMs], or a
   * function drawing from the bus's `Random` (default 0).
   */
  delay?: { minMs: number; maxMs: number } | ((random: Random) => number);
}

/** Options of {@linkcode createSimBus}. */
export interface SimBusOptions {
  /** Where deliveries and request deadlines are scheduled (a virtual clock in the sim). */
  clock: Clock;
  /** Queue-group choices and faults draw from it; give the bus a stream of its own. */
  random: Random;
  faults?: BusFaultOptions;
  /** Name of the bus's own connection in tap events (default "main"). */
  name?: string;
}

/** One observed message event, for the event log. */
export interface BusTapEvent {
  /** A connection sent it, a subscriber got it, or it was lost. */
  type: "send" | "deliver" | "drop";
  /** Clock ms when it happened. */
  timeMs: number;
  /** The subject; for a reply, the requester's inbox. */
  subject: string;
  data: Uint8Array;
  /** The sender ("send", and "drop" of a message cut as it was sent) or the receiver. */
  connection: string;
  /** On a request's "send": the inbox its replies go to. */
  reply?: string;
  /** Why a "drop": a random fault, a partition, or a reply after the request ended. */
  reason?: "fault" | "partition" | "late";
  /** On a "deliver": this is the extra copy of a duplicated leg. */
  duplicate?: true;
}

/** Observes every message event. */
export type BusTap = (event: BusTapEvent) => void;

/** The bus's fault switches, for scenarios to flip at run time. */
export interface SimBusFaults {
  /** The fault options in force. */
  readonly options: Readonly<BusFaultOptions>;
  /**
   * Replaces the fault options.
   *
   * @throws {RangeError} When a probability or delay is out of range.
   */
  set(options: BusFaultOptions): void;
  /**
   * Cuts every message whose subject matches `pattern` (e.g. `fornax.m1.oven.>`,
   * or `>` for everything) until healed: sends and in-flight legs are lost, so
   * requests time out. A reply is cut when its request's subject is.
   */
  partition(pattern: string): void;
  /** Removes a partition made with the same pattern. */
  heal(pattern: string): void;
  /** Removes every partition. */
  healAll(): void;
  /** Patterns cut now, in the order they were cut. */
  partitions(): string[];
}

/** The simulated bus: its own connection, plus more connections, faults and taps. */
export interface SimBus extends Bus {
  /** Name of this connection. */
  readonly name: string;
  /** Opens another connection to the same simulated server. */
  connect(name?: string): Bus;
  readonly faults: SimBusFaults;
  /** Calls `observer` on every send, delivery and loss; returns its remover. */
  tap(observer: BusTap): Unsubscribe;
  /** Closes every connection (this one's `close` closes the whole bus). */
  close(): Promise<void>;
}

interface Connection {
  id: number;
  name: string;
  closed: boolean;
  subs: Set<Subscription>;
  requests: Set<PendingRequest>;
  /** Latest arrival time of a leg from each sending connection, for FIFO. */
  lastArrivalFrom: Map<number, number>;
}

interface Subscription {
  conn: Connection;
  tokens: string[];
  queue: string | undefined;
  handler: (msg: BusMessage) => void;
  active: boolean;
}

/** Subscriptions matching one subject, in creation order. */
interface Matches {
  /** The subject's tokens. */
  tokens: string[];
  targets: Subscription[];
  /** Whether any of them is in a queue group. */
  queued: boolean;
}

const dup = { duplicate: true } as const;

interface PendingRequest {
  conn: Connection;
  subject: string;
  inbox: string;
  done: boolean;
  timer: unknown;
  resolve: (data: Uint8Array) => void;
  reject: (err: Error) => void;
}

/** True when `subject` matches `pattern` under NATS rules (`*` one token, `>` the rest). */
export function subjectMatches(pattern: string, subject: string): boolean {
  return tokensMatch(pattern.split("."), subject.split("."));
}

function tokensMatch(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === ">") return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== "*" && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

const tokenRe = /^[^\s.*>]+$/;

function checkSubject(subject: string): void {
  if (!subject.split(".").every((t) => tokenRe.test(t))) {
    throw new TypeError(`Invalid subject "${subject}"`);
  }
}

function checkPattern(pattern: string): string[] {
  const tokens = pattern.split(".");
  const ok = tokens.every((t, i) =>
    tokenRe.test(t) || t === "*" || (t === ">" && i === tokens.length - 1)
  );
  if (!ok) throw new TypeError(`Invalid subject pattern "${pattern}"`);
  return tokens;
}

function checkFaults(options: BusFaultOptions): BusFaultOptions {
  for (const key of ["dropProbability", "duplicateProbability"] as const) {
    const p = options[key];
    if (p !== undefined && !(p >= 0 && p <= 1)) {
      throw new RangeError(`Bus fault ${key} must be in [0, 1], got "${p}"`);
    }
  }
  const d = options.delay;
  if (d && typeof d === "object" && !(d.minMs >= 0 && d.maxMs >= d.minMs)) {
    throw new RangeError(
      `Bus fault delay must have 0 <= minMs <= maxMs, got "${d.minMs}" and "${d.maxMs}"`,
    );
  }
  return { ...options };
}

/** Most subjects whose subscriber lists are cached before the cache starts over. */
const maxCachedSubjects = 10_000;

/**
 * Creates a simulated bus on `options.clock`.
 *
 * @throws {RangeError} When a fault option is out of range.
 * @example
 * ```ts
 * const clock = createVirtualClock(0);
 * const bus = createSimBus({ clock, random: createSeededRandom(1) });
 * bus.subscribe("fornax.*.oven.evt.>", (m) => seen.push(m.subject));
 * bus.publish("fornax.m1.oven.evt.temp", data);
 * await clock.runFor(0); // the delivery happens here, never inside publish
 * ```
 */
export function createSimBus(options: SimBusOptions): SimBus {
  const { clock, random } = options;
  let faults = checkFaults(options.faults ?? {});
  const cuts: string[][] = [];
  const cutPatterns: string[] = [];
  const taps = new Set<BusTap>();
  const connections = new Set<Connection>();
  // Subscriptions in creation order: the order deliveries are scheduled in.
  const subs = new Set<Subscription>();
  const matchCache = new Map<string, Matches>();
  let nextConnId = 0;
  let nextRequestId = 0;

  // Every bus operation reads the clock: a virtual clock counts that as a
  // promise chain still at work and keeps settling (see virtual_clock.ts).
  const touch = () => void clock.now();
  const emit = (
    type: BusTapEvent["type"],
    timeMs: number,
    subject: string,
    data: Uint8Array,
    connection: string,
    more?: Pick<BusTapEvent, "reply" | "reason" | "duplicate">,
  ) => {
    if (taps.size === 0) return;
    const event: BusTapEvent = { type, timeMs, subject, data, connection, ...more };
    for (const tap of taps) tap(event);
  };
  const isCut = (subject: string) => {
    if (cuts.length === 0) return false;
    const tokens = subject.split(".");
    return cuts.some((cut) => tokensMatch(cut, tokens));
  };
  const matching = (subject: string): Matches => {
    let found = matchCache.get(subject);
    if (!found) {
      const tokens = subject.split(".");
      const targets = [...subs].filter((s) => tokensMatch(s.tokens, tokens));
      found = { tokens, targets, queued: targets.some((s) => s.queue !== undefined) };
      if (matchCache.size >= maxCachedSubjects) matchCache.clear();
      matchCache.set(subject, found);
    }
    return found;
  };
  // Subscriptions come and go with every wait of an order: the cached matches
  // follow them instead of being dropped. A new subscription is the newest, so
  // it goes last, as `matching` would put it.
  const cacheSubscribed = (sub: Subscription) => {
    for (const [subject, m] of matchCache) {
      if (!tokensMatch(sub.tokens, m.tokens)) continue;
      const queued = m.queued || sub.queue !== undefined;
      matchCache.set(subject, { tokens: m.tokens, targets: [...m.targets, sub], queued });
    }
  };
  const cacheUnsubscribed = (sub: Subscription) => {
    for (const [subject, m] of matchCache) {
      if (!m.targets.includes(sub)) continue;
      const targets = m.targets.filter((s) => s !== sub);
      const queued = targets.some((s) => s.queue !== undefined);
      matchCache.set(subject, { tokens: m.tokens, targets, queued });
    }
  };
  const drawDelayMs = (): number => {
    const d = faults.delay;
    if (!d) return 0;
    const ms = typeof d === "function"
      ? d(random)
      : d.maxMs > d.minMs
      ? random.int(d.minMs, d.maxMs)
      : d.minMs;
    return Number.isFinite(ms) && ms > 0 ? Math.ceil(ms) : 0;
  };

  /**
   * Sends one leg from `from` to `to`: applies drop, duplicate and delay, keeps
   * FIFO between the two connections, and calls `arrive` in a clock timer.
   */
  const sendLeg = (
    nowMs: number,
    from: Connection,
    to: Connection,
    subject: string,
    data: Uint8Array,
    cutSubject: string,
    arrive: (atMs: number, data: Uint8Array, duplicate: boolean) => void,
  ) => {
    const dropP = faults.dropProbability ?? 0;
    if (dropP > 0 && random.float() < dropP) {
      emit("drop", nowMs, subject, data, to.name, { reason: "fault" });
      return;
    }
    const dupP = faults.duplicateProbability ?? 0;
    const copies = dupP > 0 && random.float() < dupP ? 2 : 1;
    for (let copy = 0; copy < copies; copy++) {
      const arrivalMs = Math.max(nowMs + drawDelayMs(), to.lastArrivalFrom.get(from.id) ?? 0);
      to.lastArrivalFrom.set(from.id, arrivalMs);
      const duplicate = copy > 0;
      clock.setTimeout(() => {
        if (to.closed) return;
        const atMs = clock.now();
        if (isCut(cutSubject)) {
          emit("drop", atMs, subject, data, to.name, { reason: "partition" });
          return;
        }
        // Each receiver gets its own bytes, as it would off the wire.
        arrive(atMs, data.slice(), duplicate);
      }, arrivalMs - nowMs);
    }
  };

  /** Routes a publish or request from `from`; returns false when nobody subscribes. */
  const route = (from: Connection, subject: string, data: Uint8Array, request?: PendingRequest) => {
    // Read whether or not anyone taps, so a tap never changes how long a
    // virtual clock settles.
    const nowMs = clock.now();
    const bytes = data.slice();
    emit("send", nowMs, subject, bytes, from.name, request ? { reply: request.inbox } : undefined);
    // A cut subject is a black hole, even for the no-responders status.
    if (isCut(subject)) {
      emit("drop", nowMs, subject, bytes, from.name, { reason: "partition" });
      return true;
    }
    const { targets, queued } = matching(subject);
    if (targets.length === 0) return false;
    // One member per queue group, chosen when its first member comes up.
    const chosen = queued ? new Map<string, Subscription>() : undefined;
    if (chosen) {
      for (const sub of targets) {
        if (sub.queue === undefined || chosen.has(sub.queue)) continue;
        const members = targets.filter((s) => s.queue === sub.queue);
        chosen.set(
          sub.queue,
          members.length === 1 ? sub : members[random.int(0, members.length - 1)]!,
        );
      }
    }
    for (const sub of targets) {
      if (sub.queue !== undefined && chosen?.get(sub.queue) !== sub) continue;
      sendLeg(nowMs, from, sub.conn, subject, bytes, subject, (atMs, copy, duplicate) => {
        if (!sub.active) return;
        emit("deliver", atMs, subject, copy, sub.conn.name, duplicate ? dup : undefined);
        sub.handler(
          request
            ? { subject, data: copy, respond: (reply) => respond(sub.conn, request, reply) }
            : { subject, data: copy },
        );
      });
    }
    return true;
  };

  const respond = (from: Connection, request: PendingRequest, data: Uint8Array) => {
    if (from.closed) return;
    const nowMs = clock.now();
    const { inbox } = request;
    const bytes = data.slice();
    emit("send", nowMs, inbox, bytes, from.name);
    if (isCut(request.subject) || isCut(inbox)) {
      emit("drop", nowMs, inbox, bytes, request.conn.name, { reason: "partition" });
      return;
    }
    sendLeg(nowMs, from, request.conn, inbox, bytes, request.subject, (atMs, copy, duplicate) => {
      if (request.done) {
        emit("drop", atMs, inbox, copy, request.conn.name, { reason: "late" });
        return;
      }
      emit("deliver", atMs, inbox, copy, request.conn.name, duplicate ? dup : undefined);
      finish(request);
      request.resolve(copy);
    });
  };

  const finish = (request: PendingRequest) => {
    request.done = true;
    clock.clearTimeout(request.timer);
    request.conn.requests.delete(request);
  };

  const closeConnection = (conn: Connection) => {
    if (conn.closed) return;
    touch();
    conn.closed = true;
    connections.delete(conn);
    for (const sub of conn.subs) {
      sub.active = false;
      subs.delete(sub);
    }
    conn.subs.clear();
    matchCache.clear();
    for (const request of [...conn.requests]) {
      finish(request);
      request.reject(new BusClosedError());
    }
  };

  const open = (name: string): Bus & { conn: Connection } => {
    const conn: Connection = {
      id: nextConnId++,
      name,
      closed: false,
      subs: new Set(),
      requests: new Set(),
      lastArrivalFrom: new Map(),
    };
    connections.add(conn);
    return {
      conn,
      publish(subject, data) {
        if (conn.closed) throw new BusClosedError();
        // A cached subject was checked when it was first routed.
        if (!matchCache.has(subject)) checkSubject(subject);
        route(conn, subject, data);
      },
      subscribe(pattern, handler, opts?: SubscribeOptions) {
        if (conn.closed) throw new BusClosedError();
        touch();
        const sub: Subscription = {
          conn,
          tokens: checkPattern(pattern),
          queue: opts?.queue || undefined,
          handler,
          active: true,
        };
        subs.add(sub);
        conn.subs.add(sub);
        cacheSubscribed(sub);
        return () => {
          if (!sub.active) return;
          touch();
          sub.active = false;
          subs.delete(sub);
          conn.subs.delete(sub);
          cacheUnsubscribed(sub);
        };
      },
      request(subject, data, timeoutMs) {
        if (conn.closed) return Promise.reject(new BusClosedError());
        if (!matchCache.has(subject)) checkSubject(subject);
        return new Promise<Uint8Array>((resolve, reject) => {
          const request: PendingRequest = {
            conn,
            subject,
            inbox: `_INBOX.${conn.name}.${nextRequestId++}`,
            done: false,
            timer: undefined,
            resolve,
            reject,
          };
          conn.requests.add(request);
          request.timer = clock.setTimeout(() => {
            finish(request);
            reject(new BusTimeoutError(subject, timeoutMs));
          }, timeoutMs);
          if (!route(conn, subject, data, request)) {
            // The server's no-responders status comes back as a message: never synchronous.
            clock.clearTimeout(request.timer);
            request.timer = clock.setTimeout(() => {
              finish(request);
              reject(new NoRespondersError(subject));
            }, 0);
          }
        });
      },
      flush: () => conn.closed ? Promise.reject(new BusClosedError()) : Promise.resolve(),
      close() {
        closeConnection(conn);
        return Promise.resolve();
      },
    };
  };

  const main = open(options.name ?? "main");
  const { conn: _conn, ...mainBus } = main;
  return {
    ...mainBus,
    name: main.conn.name,
    connect: (name?: string) => {
      if (main.conn.closed) throw new BusClosedError();
      const { conn: _c, ...bus } = open(name ?? `c${nextConnId}`);
      return bus;
    },
    faults: {
      get options() {
        return faults;
      },
      set(next) {
        faults = checkFaults(next);
      },
      partition(pattern) {
        cuts.push(checkPattern(pattern));
        cutPatterns.push(pattern);
      },
      heal(pattern) {
        const i = cutPatterns.indexOf(pattern);
        if (i < 0) return;
        cuts.splice(i, 1);
        cutPatterns.splice(i, 1);
      },
      healAll() {
        cuts.length = 0;
        cutPatterns.length = 0;
      },
      partitions: () => [...cutPatterns],
    },
    tap(observer) {
      taps.add(observer);
      return () => taps.delete(observer);
    },
    close() {
      for (const conn of [...connections]) closeConnection(conn);
      return Promise.resolve();
    },
  };
}
