/**
 * The sync actor: carries the machine's domain events to the cloud's
 * JetStream, without loss and without duplicates, through any outage.
 *
 * It listens to this machine's bus (orders, payments, stock, discards,
 * temperatures downsampled to one per 10 s per sensor, cooking sessions,
 * faults, every component's alerts, changes of the machine status), maps each
 * event to a fleet event, writes it to the outbox in the journal first, then publishes
 * it with the event id as JetStream message id and deletes it once
 * acknowledged. Offline (no stream, NATS down, timeouts) the outbox grows and
 * the sender retries with backoff, oldest first, a bounded batch at a time;
 * when the link returns it drains. A heartbeat (the config version this
 * machine runs, the outbox depth) goes out directly every 30 s, never queued.
 *
 * Serves `fornax.<m>.sync.cmd.status`.
 *
 * @example
 * ```ts
 * const sync = startSync(ctx, { journal, nc: natsBus.nc });
 * const status = await ctx.bus.request(syncProtocol.status, {});
 * await sync.stop();
 * ```
 */
import { assign, createActor, fromPromise } from "xstate";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type ActorContext, type RunningActor, stateString } from "../actor.ts";
import { every } from "../../clock/clock.ts";
import type { Journal } from "../../journal/journal.ts";
import type { Unsubscribe } from "../../bus/bus.ts";
import { ok } from "../../protocol/define.ts";
import { alert } from "../../protocol/common.ts";
import * as orderP from "../../protocol/order.ts";
import * as paymentP from "../../protocol/payment.ts";
import * as carouselP from "../../protocol/carousel.ts";
import * as ovenP from "../../protocol/oven.ts";
import * as armP from "../../protocol/arm.ts";
import * as safetyP from "../../protocol/safety.ts";
import * as supervisorP from "../../protocol/supervisor.ts";
import * as syncP from "../../protocol/sync.ts";
import { encodeFleetEvent, fleet, type FleetEvent, type FleetNames } from "../../protocol/fleet.ts";
import { Outbox } from "./outbox.ts";
import { senderMachine, type SendResult } from "./machine.ts";
import * as map from "./mapping.ts";

export { Outbox } from "./outbox.ts";

/** Options of {@linkcode startSync}. */
export interface SyncOptions {
  /** The machine journal; the actor migrates and owns its `sync_*` tables. */
  journal: Journal;
  /** The NATS connection whose JetStream reaches the fleet stream. */
  nc: NatsConnection;
  /** The fleet's names (default: production `fleet`). */
  names?: FleetNames;
  /** Events per send (default 200). */
  batchSize?: number;
  /** Wall ms JetStream may take to acknowledge a publish (default 5000). */
  publishTimeoutMs?: number;
  /** Clock ms between temperature samples per sensor (default 10 000). */
  temperaturePeriodMs?: number;
  /** Clock ms between heartbeats (default 30 000). */
  heartbeatMs?: number;
  /** Outbox rows beyond which the oldest temperature samples are dropped (default 100 000). */
  maxOutbox?: number;
  /** Reported in heartbeats. */
  softwareVersion?: string;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Starts the sync actor; see the module doc. */
export function startSync(ctx: ActorContext, options: SyncOptions): RunningActor {
  const { bus, clock } = ctx;
  const log = ctx.log.child("sync");
  const names = options.names ?? fleet;
  const batchSize = options.batchSize ?? 200;
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const outbox = new Outbox(options.journal, options.maxOutbox);
  const js = jetstream(options.nc, { timeout: publishTimeoutMs });
  const mine = bus.machineId;
  // Clock ms per wall ms: deadlines and backoffs never go below their wall
  // floor, or a scaled clock would hammer the link.
  const speed = Math.max(1, (clock as { speed?: number }).speed ?? 1);
  let stopped = false;
  let badEvents = 0;
  const pending = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    p.finally(() => pending.delete(p)).catch(() => {});
    return p;
  };

  const sendBatch = async (): Promise<SendResult> => {
    const rows = outbox.peek(batchSize);
    if (!rows.length) return { acked: 0 };
    // Pipelined in outbox order on one connection, so the stream stores them in
    // that order; a failed one is retried first next time, and anything sent
    // twice is dropped by the duplicate window.
    const results = await track(
      Promise.allSettled(rows.map((r) =>
        js.publish(r.subject, encoder.encode(r.body), {
          msgID: r.eventId,
          timeout: publishTimeoutMs,
        })
      )),
    );
    const acked = rows.filter((_, i) => results[i]!.status === "fulfilled").map((r) => r.seq);
    outbox.acknowledged(acked, clock.now());
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      const reason = (failed as PromiseRejectedResult).reason;
      throw new Error(
        `${rows.length - acked.length} of ${rows.length} not acknowledged: ${reason}`,
      );
    }
    return { acked: acked.length };
  };

  const actor = createActor(
    senderMachine.provide({
      actors: { sendBatch: fromPromise(sendBatch) },
      guards: { hasBacklog: () => outbox.depth() > 0 },
      actions: { drawJitter: assign({ jitter: () => ctx.random.float() }) },
    }),
    {
      clock,
      input: {
        backoffBaseMs: Math.max(1_000, 250 * speed),
        backoffMaxMs: Math.max(30_000, 2_000 * speed),
        sendDeadlineMs: (publishTimeoutMs + 2_000) * speed,
        jitter: 0,
      },
    },
  );
  let lastLogged = "";
  actor.subscribe({
    next: (snap) => {
      const state = stateString(snap.value);
      if (state === "waiting" && lastLogged !== snap.context.lastError) {
        lastLogged = snap.context.lastError ?? "";
        log.log("warn", "fleet link down; keeping events", {
          outboxDepth: outbox.depth(),
          err: snap.context.lastError,
        });
      } else if (state === "idle" && lastLogged) {
        lastLogged = "";
        log.log("info", "fleet link up; outbox drained", {});
      }
    },
    error: (err) => log.log("error", "sync sender failed", { err: String(err) }),
  });

  const enqueue = (make: () => FleetEvent) => {
    if (stopped) return;
    let event: FleetEvent;
    let body: string;
    try {
      event = make();
      body = decoder.decode(encodeFleetEvent(event));
    } catch (err) {
      badEvents++;
      log.log("warn", "event not mapped to the fleet", { err: String(err).slice(0, 300) });
      return;
    }
    outbox.add({
      eventId: event.id,
      kind: event.kind,
      subject: names.event(event.machineId, event.kind),
      body,
      createdAt: clock.now(),
    });
    actor.send({ type: "OUTBOX.ADDED" });
  };

  // At a scaled clock, at most ten samples per wall second per sensor reach the
  // journal: each is a synchronous write.
  let lastMachineView = "";
  const temps = new map.Downsampler(Math.max(options.temperaturePeriodMs ?? 10_000, 100 * speed));
  const subs: Unsubscribe[] = [
    bus.subscribe(orderP.updated, mine, (m) => enqueue(() => map.fromOrder(m))),
    bus.subscribe(paymentP.changed, mine, (m) => enqueue(() => map.fromPayment(m))),
    bus.subscribe(carouselP.changed, mine, (m) => enqueue(() => map.fromInventory(m))),
    bus.subscribe(carouselP.discarded, mine, (m) => enqueue(() => map.fromDiscard(m))),
    bus.subscribe(carouselP.temperature, mine, (m) => {
      if (temps.admit("storage", m.ts, m.salesStopped ? "stopped" : "ok")) {
        enqueue(() => map.fromStorageTemp(m));
      }
    }),
    bus.subscribe(ovenP.temperature, mine, (m) => {
      if (temps.admit("oven", m.ts, m.state)) enqueue(() => map.fromOvenTemp(m));
    }),
    bus.subscribe(ovenP.cooked, mine, (m) => enqueue(() => map.fromCooked(m))),
    bus.subscribe(ovenP.fault, mine, (m) => enqueue(() => map.fromOvenFault(m))),
    bus.subscribe(armP.fault, mine, (m) => enqueue(() => map.fromArmFault(m))),
    bus.subscribe(safetyP.tripped, mine, (m) => enqueue(() => map.fromSafetyTrip(m))),
    bus.subscribe(supervisorP.machine, mine, (m) => {
      // The supervisor repeats its view; the fleet needs the changes.
      const view = JSON.stringify([m.status, m.reason, m.cashOnly, m.maintenance]);
      if (view === lastMachineView) return;
      lastMachineView = view;
      enqueue(() => map.fromMachine(m));
    }),
    ...(Object.keys(alert) as Array<keyof typeof alert>).map((component) =>
      bus.subscribe(alert[component], mine, (m) => enqueue(() => map.fromAlert(component, m)))
    ),
  ];

  subs.push(bus.serve(syncP.status, () => {
    const snap = actor.getSnapshot();
    const counters = outbox.counters();
    return ok({
      state: stateString(snap.value),
      online: snap.context.failures === 0,
      outboxDepth: outbox.depth(),
      oldestQueuedTs: outbox.oldestTs(),
      lastAckTs: counters.lastAckTs,
      lastError: snap.context.lastError,
      sentTotal: counters.sentTotal,
      droppedTelemetry: counters.droppedTelemetry,
    });
  }));

  const beat = () => {
    if (stopped) return;
    const e: FleetEvent = {
      id: ctx.random.uuid(),
      machineId: mine,
      ts: clock.now(),
      kind: "heartbeat",
      configVersion: ctx.config.version,
      softwareVersion: options.softwareVersion ?? null,
      outboxDepth: outbox.depth(),
      via: "nats",
    };
    // Straight out, never queued: a heartbeat from an hour ago says nothing.
    track(
      js.publish(names.event(mine, "heartbeat"), encodeFleetEvent(e), {
        msgID: e.id,
        timeout: publishTimeoutMs,
      }),
    ).catch(() => {});
  };
  const stopBeat = every(clock, Math.max(options.heartbeatMs ?? 30_000, 1_000 * speed), beat);

  // A reconnect ends the backoff at once.
  (async () => {
    for await (const s of options.nc.status()) {
      if (stopped) break;
      if (s.type === "reconnect") actor.send({ type: "LINK.UP" });
    }
  })().catch(() => {});

  actor.start();
  beat();
  log.log("info", "sync started", { outboxDepth: outbox.depth(), stream: names.stream });

  return {
    state: () => stateString(actor.getSnapshot().value),
    alive: () => actor.getSnapshot().status === "active" && !stopped,
    async stop() {
      if (stopped) return;
      stopped = true;
      stopBeat();
      for (const u of subs) u();
      actor.stop();
      // Acknowledgements still arriving are recorded before the journal closes.
      await Promise.allSettled([...pending]);
      if (badEvents) log.log("warn", "events not mapped since start", { badEvents });
    },
  };
}
