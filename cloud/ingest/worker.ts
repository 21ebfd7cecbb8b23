/**
 * An ingestion worker: fetches batches from the fleet stream's durable pull
 * consumer, writes each batch in one Postgres transaction, and acknowledges
 * only after the commit. Start several on the same consumer to scale out.
 *
 * - A redelivered message (worker killed, ack lost) is written once: every
 *   write is idempotent (see `store.ts`).
 * - A message that cannot be stored (bad JSON, schema, a subject that
 *   contradicts its payload, a value Postgres refuses) goes to
 *   `fleetdlq.<machineId>` with a DEAD_LETTER alert and is acknowledged; the
 *   stream keeps flowing.
 * - Postgres away (or any other error that is not the message's fault):
 *   nothing is acknowledged, the batch is handed back with a delay, and the
 *   worker backs off and tries again. Nothing lost, nothing twice.
 * - The next batch is fetched while the current one commits, so at a high
 *   rate a worker never waits for the stream.
 * - Every so often a worker prunes `processed_events` (see `prune.ts`).
 *
 * @example
 * ```ts
 * await ensureIngestConsumer(nc, fleet);
 * const workers = [1, 2, 3].map(() => startIngestWorker({ db, nc }));
 * // … on shutdown:
 * await Promise.all(workers.map((w) => w.stop()));
 * ```
 */
import { type Consumer, type ConsumerMessages, jetstream, type JsMsg } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { type Clock, createRealClock, sleep } from "../../clock/clock.ts";
import { createLogger, type Logger } from "../../log/log.ts";
import type { Database } from "../db/database.ts";
import {
  decodeFleetEvent,
  encodeFleetAlert,
  fleet,
  type FleetAlert,
  type FleetEvent,
  type FleetNames,
} from "../../protocol/fleet.ts";
import {
  type DeadLetter,
  deadLetterMachine,
  MachineCache,
  recordDeadLetters,
  storeEvents,
} from "./store.ts";
import { ensureFleetStreams, ingestDurable } from "./stream.ts";
import { pruneProcessedEvents } from "./prune.ts";

/** Thrown by a fault hook to make the worker die on the spot, as a killed process would. */
export class WorkerCrash extends Error {
  /** Creates the error. */
  constructor(message = "Worker crashed (fault injected)") {
    super(message);
    this.name = "WorkerCrash";
  }
}

/** What one committed batch did. */
export interface BatchReport {
  /** Messages in the batch. */
  messages: number;
  /** The batch's valid events. */
  events: FleetEvent[];
  /** Events applied. */
  applied: number;
  /** Events found already written (redeliveries). */
  duplicates: number;
  /** Messages sent to the dead-letter stream. */
  deadLetters: number;
  /** Clock ms when the batch committed. */
  committedAtMs: number;
}

/** A worker's counters. */
export interface IngestStats {
  batches: number;
  messages: number;
  /** Events applied. */
  applied: number;
  /** Events found already written. */
  duplicates: number;
  deadLetters: number;
  /** Batches handed back after a failure. */
  retries: number;
  lastError: string | null;
}

/** Options of {@linkcode startIngestWorker}. */
export interface IngestWorkerOptions {
  db: Database;
  nc: NatsConnection;
  /** The fleet's names (default: production `fleet`). */
  names?: FleetNames;
  /** The durable consumer (default `ingest`); see `ensureIngestConsumer`. */
  durable?: string;
  /** Messages per batch (default 2000: on the fleet bench, the least CPU per event). */
  batchSize?: number;
  /** How long one fetch waits for a full batch, in ms (default 1000, JetStream's minimum). */
  fetchExpiresMs?: number;
  /** Longest backoff after failures, in ms (default 5000). */
  maxBackoffMs?: number;
  /** How often to prune `processed_events`, in ms (default 10 min, first at start; 0: never). */
  pruneEveryMs?: number;
  clock?: Clock;
  log?: Logger;
  /** Called after each committed and acknowledged batch. */
  onBatch?: (report: BatchReport) => void;
  /** Test hooks: throw {@linkcode WorkerCrash} from one to die at that point. */
  faults?: {
    beforeCommit?: () => void | Promise<void>;
    afterCommit?: () => void | Promise<void>;
  };
}

/** A running worker. */
export interface IngestWorker {
  stats(): IngestStats;
  /** Resolves when the worker's loop ended (stopped or crashed). */
  readonly done: Promise<void>;
  /** Finishes the batch in hand and the fetch under way (handing its messages back), then stops. */
  stop(): Promise<void>;
}

/** Postgres refused the data itself (SQLSTATE classes 22 and 23): the message is at fault. */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|23)[0-9A-Z]{3}$/.test(code);
}

type Decoded =
  | { ok: true; event: FleetEvent }
  | { ok: false; letter: DeadLetter };

function letterIdOf(m: JsMsg): string {
  const msgId = m.headers?.get("Nats-Msg-Id");
  return `dlq:${msgId || `seq-${m.seq}-${m.info.timestampNanos}`}`;
}

function decodeMessage(names: FleetNames, m: JsMsg): Decoded {
  const refuse = (reason: string): Decoded => ({
    ok: false,
    letter: {
      subject: m.subject,
      machineId: deadLetterMachine(m.subject),
      letterId: letterIdOf(m),
      reason,
    },
  });
  const decoded = decodeFleetEvent(m.data);
  // The usual case costs one comparison: a payload the schema accepted names a
  // valid machine and kind, so a subject equal to theirs is valid too.
  if (decoded.ok && m.subject === names.event(decoded.value.machineId, decoded.value.kind)) {
    return { ok: true, event: decoded.value };
  }
  const where = names.parse(m.subject);
  if (!where) return refuse(`subject is not "${names.root}.<machineId>.<kind>"`);
  if (!decoded.ok) return refuse(decoded.error);
  const e = decoded.value;
  if (e.kind !== where.kind) {
    return refuse(`payload kind "${e.kind}" contradicts subject kind "${where.kind}"`);
  }
  return refuse(`payload machineId "${e.machineId}" contradicts subject "${where.machineId}"`);
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ").slice(0, 300);

/** Starts one ingestion worker on the durable consumer; see the module doc. */
export function startIngestWorker(options: IngestWorkerOptions): IngestWorker {
  const { db, nc } = options;
  const names = options.names ?? fleet;
  const durable = options.durable ?? ingestDurable;
  const batchSize = options.batchSize ?? 2000;
  const expires = Math.max(1000, options.fetchExpiresMs ?? 1000);
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  const pruneEveryMs = options.pruneEveryMs ?? 10 * 60_000;
  const clock = options.clock ?? createRealClock();
  const log = options.log ?? createLogger({ clock, component: "ingest" });
  const js = jetstream(nc);
  const cache = new MachineCache();
  const stats: IngestStats = {
    batches: 0,
    messages: 0,
    applied: 0,
    duplicates: 0,
    deadLetters: 0,
    retries: 0,
    lastError: null,
  };
  const abort = new AbortController();
  let stopping = false;
  const fetching = new Set<ConsumerMessages>();

  const storeAll = async (events: FleetEvent[], letters: DeadLetter[]) => {
    const nowMs = clock.now();
    const outcome = await db.transaction(async (tx) => {
      const outcome = await storeEvents(tx, events, cache, nowMs);
      const opened = await recordDeadLetters(tx, letters, nowMs);
      await options.faults?.beforeCommit?.();
      return { ...outcome, opened: [...outcome.opened, ...opened] };
    });
    cache.committed(outcome.machineIds, outcome.refreshed, nowMs);
    return outcome;
  };

  /**
   * Stores a batch Postgres refused in halves, and their halves, each in its
   * own transaction, until the events it refuses stand alone: they become dead
   * letters, the rest is stored. A bad event among 2000 costs some twenty
   * transactions, not 2000.
   */
  const storeSplitting = async (
    items: { event: FleetEvent; msg: JsMsg }[],
    letters: Map<DeadLetter, JsMsg>,
    refusal: unknown,
  ) => {
    let applied = 0;
    let duplicates = 0;
    const opened: FleetAlert[] = [];
    const attempt = async (part: typeof items) => {
      try {
        const o = await storeAll(part.map((i) => i.event), []);
        applied += o.applied;
        duplicates += o.duplicates;
        opened.push(...o.opened);
      } catch (err) {
        if (!isDataError(err)) throw err;
        await split(part, err);
      }
    };
    const split = async (part: typeof items, err: unknown) => {
      const [only] = part;
      if (part.length === 1 && only) {
        letters.set({
          subject: only.msg.subject,
          machineId: only.event.machineId,
          letterId: letterIdOf(only.msg),
          reason: `refused by the database: ${oneLine(String((err as Error).message))}`,
        }, only.msg);
        return;
      }
      const half = Math.ceil(part.length / 2);
      await attempt(part.slice(0, half));
      await attempt(part.slice(half));
    };
    await split(items, refusal);
    const last = await storeAll([], [...letters.keys()]);
    return { applied, duplicates, opened: [...opened, ...last.opened] };
  };

  const handle = async (msgs: JsMsg[]) => {
    const items: { event: FleetEvent; msg: JsMsg }[] = [];
    const letters = new Map<DeadLetter, JsMsg>();
    for (const m of msgs) {
      const d = decodeMessage(names, m);
      if (d.ok) items.push({ event: d.event, msg: m });
      else letters.set(d.letter, m);
    }
    let outcome;
    try {
      outcome = await storeAll(items.map((i) => i.event), [...letters.keys()]);
    } catch (err) {
      if (!isDataError(err)) throw err;
      log.log("warn", "batch refused by the database; storing it in halves", {
        err: oneLine(String(err)),
      });
      outcome = await storeSplitting(items, letters, err);
    }
    await options.faults?.afterCommit?.();
    // Dead letters are stored in their own stream before their message is acked;
    // the letter id dedups a repeat after a crash between the two.
    for (const [l, m] of letters) {
      const h = headers();
      h.set("Fornax-Subject", l.subject);
      h.set("Fornax-Reason", oneLine(l.reason));
      const letter = () =>
        js.publish(names.deadLetter(l.machineId), m.data, { msgID: l.letterId, headers: h });
      // A dead-letter stream someone deleted is created again rather than
      // holding the batch back forever.
      await letter().catch(async () => {
        await ensureFleetStreams(nc, names);
        return await letter();
      });
      log.log("warn", "dead letter", { subject: l.subject, reason: l.reason });
    }
    for (const a of outcome.opened) {
      try {
        nc.publish(names.alerts(a.severity), encodeFleetAlert(a));
      } catch (err) {
        log.log("warn", "alert not published", { err: String(err) });
      }
    }
    for (const m of msgs) m.ack();
    stats.batches++;
    stats.messages += msgs.length;
    stats.applied += outcome.applied;
    stats.duplicates += outcome.duplicates;
    stats.deadLetters += letters.size;
    options.onBatch?.({
      messages: msgs.length,
      events: items.map((i) => i.event),
      applied: outcome.applied,
      duplicates: outcome.duplicates,
      deadLetters: letters.size,
      committedAtMs: clock.now(),
    });
  };

  /** One batch: full, or what came before the fetch expired. */
  const fetchBatch = async (consumer: Consumer): Promise<JsMsg[]> => {
    const iter = await consumer.fetch({ max_messages: batchSize, expires });
    fetching.add(iter);
    const msgs: JsMsg[] = [];
    try {
      for await (const m of iter) msgs.push(m);
      log.log("debug", "fetched", { messages: msgs.length });
    } catch (err) {
      // Messages delivered before the error are ours to store or hand back:
      // dropped, they would wait out the ack wait.
      if (!msgs.length) throw err;
      log.log("warn", "fetch ended early", { messages: msgs.length, err: oneLine(String(err)) });
    } finally {
      fetching.delete(iter);
    }
    return msgs;
  };

  /** Hands `msgs` back to the stream, to be delivered again after `delayMs`. */
  const handBack = (msgs: JsMsg[], delayMs: number) => {
    try {
      for (const m of msgs) m.nak(delayMs);
    } catch {
      // The connection is gone: the server redelivers after the ack wait.
    }
  };

  // In the background, on its own connection: a batch never waits for it.
  let pruning: Promise<void> | null = null;
  let prunedAtMs = -Infinity;
  const pruneWhenDue = () => {
    if (!pruneEveryMs || pruning || clock.now() - prunedAtMs < pruneEveryMs) return;
    prunedAtMs = clock.now();
    pruning = pruneProcessedEvents(db)
      .then((deleted) => {
        if (deleted) log.log("info", "processed events pruned", { deleted });
      }, (err) => log.log("warn", "pruning failed", { err: oneLine(String(err)) }))
      .finally(() => pruning = null);
  };

  const run = async () => {
    let failures = 0;
    let consumer: Consumer | null = null;
    let next: Promise<JsMsg[]> | null = null;
    /**
     * The prefetched batch's messages, once its fetch ended (at most the fetch
     * expiry later). With `cut`, it ends now, as in a dead process: what the
     * server still sends it comes back only after the ack wait.
     */
    const dropNext = async (cut: boolean): Promise<JsMsg[]> => {
      const pending = next;
      next = null;
      if (!pending) return [];
      if (cut) { for (const iter of fetching) iter.stop(); }
      return await pending.catch(() => []);
    };
    while (!stopping) {
      let msgs: JsMsg[] = [];
      pruneWhenDue();
      try {
        consumer ??= await js.consumers.get(names.stream, durable);
        if (stopping) break;
        msgs = await (next ?? fetchBatch(consumer));
        next = null;
        if (!msgs.length) continue;
        if (stopping) {
          handBack(msgs, 0);
          break;
        }
        // The next batch comes in while this one commits: at a high rate it
        // is full by then, and the worker never waits for the stream. Its
        // failure is handled where it is awaited.
        next = fetchBatch(consumer);
        next.catch(() => {});
        await handle(msgs);
        failures = 0;
        msgs = [];
      } catch (err) {
        // Looked up again: the consumer may have been recreated meanwhile.
        if (!msgs.length) consumer = null;
        if (err instanceof WorkerCrash) {
          log.log("warn", "worker crashed", { held: msgs.length });
          // A dead process holds its messages until the ack wait runs out.
          await dropNext(true);
          return;
        }
        failures++;
        const delayMs = Math.min(maxBackoffMs, 100 * 2 ** Math.min(failures, 10));
        stats.retries += msgs.length ? 1 : 0;
        stats.lastError = oneLine(String(err));
        const prefetched = await dropNext(false);
        if (msgs.length || prefetched.length) {
          handBack([...msgs, ...prefetched], delayMs);
          log.log("warn", "batch handed back", {
            messages: msgs.length + prefetched.length,
            err: stats.lastError,
            delayMs,
          });
        } else if (!stopping) {
          log.log("warn", "fetch failed", { err: stats.lastError, delayMs });
        }
        await sleep(clock, delayMs, abort.signal).catch(() => {});
      }
    }
    // Fetched but never started: another worker takes them at once.
    handBack(await dropNext(false), 0);
  };

  // A prune under way finishes before the worker counts as done.
  const done = run().then(() => pruning ?? undefined);
  return {
    stats: () => ({ ...stats }),
    done,
    async stop() {
      // A fetch under way is left to end (at most its expiry): cut short, it
      // would lose what the server is sending it until the ack wait runs out.
      stopping = true;
      abort.abort();
      await done;
    },
  };
}
