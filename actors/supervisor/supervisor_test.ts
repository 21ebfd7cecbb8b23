import assert from "node:assert/strict";
import { every } from "../../clock/clock.ts";
import { safetyStatus, testActorContext, testConfig } from "../../testing/fixtures.ts";
import { connectTestBus, type TestBus, waitFor } from "../../testing/nats.ts";
import { type Component, ok } from "../../protocol/define.ts";
import { alert as alertOf, heartbeat, restart } from "../../protocol/common.ts";
import type { OrderStatus } from "../../protocol/entities.ts";
import * as oven from "../../protocol/oven.ts";
import * as arm from "../../protocol/arm.ts";
import * as order from "../../protocol/order.ts";
import * as payment from "../../protocol/payment.ts";
import * as safety from "../../protocol/safety.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import type { RunningActor } from "../actor.ts";
import { startSupervisor } from "./mod.ts";

/** Request deadlines in clock ms that a loaded test machine cannot miss. */
const patient = { timeoutMs: 60_000 };

type CancelRequest = { orderId: string; reason: string; by: string };
type MachineEvent = { status: string; reason: string | null; cashOnly: boolean };

/** One supervisor on a fresh test bus, with what it publishes recorded. */
interface Rig {
  tb: TestBus;
  sup: RunningActor;
  machineEvents: MachineEvent[];
  ownAlerts: { type: string; severity: string; message: string; orderId?: string | undefined }[];
  status(): Promise<supervisor.SupervisorStatus>;
  /** Polls `status` until `check` holds. */
  statusWhere(what: string, check: (s: supervisor.SupervisorStatus) => boolean): Promise<
    supervisor.SupervisorStatus
  >;
  close(): Promise<void>;
}

async function startRig(options: { speed: number; heartbeatTimeoutMs?: number }): Promise<Rig> {
  const tb = await connectTestBus({ speed: options.speed });
  const machineEvents: MachineEvent[] = [];
  const ownAlerts: Rig["ownAlerts"] = [];
  tb.bus.subscribe(supervisor.machine, tb.machineId, (m) => machineEvents.push(m));
  tb.bus.subscribe(alertOf.supervisor, tb.machineId, (a) => ownAlerts.push(a));
  const sup = startSupervisor(
    testActorContext(tb, testConfig()),
    options.heartbeatTimeoutMs ? { heartbeatTimeoutMs: options.heartbeatTimeoutMs } : {},
  );
  const status = async () => {
    const r = await tb.bus.request(supervisor.status, {}, patient);
    assert.ok(r.ok, `status failed: ${JSON.stringify(r)}`);
    return r.value;
  };
  return {
    tb,
    sup,
    machineEvents,
    ownAlerts,
    status,
    statusWhere: (what, check) =>
      waitFor(what, async () => {
        const s = await status();
        return check(s) ? s : undefined;
      }),
    close: async () => {
      await sup.stop();
      await tb.close();
    },
  };
}

/** Plays a component's host: heartbeats every clock second, answers `restart`. */
class FakeHost {
  alive = true;
  silent = false;
  restarts = 0;
  restartRequests = 0;
  private readonly stops: Array<() => void>;

  constructor(private readonly tb: TestBus, private readonly component: Component) {
    this.stops = [
      tb.bus.serve(restart[component], () => {
        this.restartRequests++;
        this.restarts++;
        this.alive = true;
        this.silent = false;
        return ok({ component, restarts: this.restarts });
      }),
      every(tb.clock, 1000, () => this.beat()),
    ];
    this.beat();
  }

  beat(): void {
    if (this.silent) return;
    this.tb.bus.publish(heartbeat, {
      host: this.component,
      beats: [{
        component: this.component,
        state: this.alive ? "idle" : "crashed",
        alive: this.alive,
        restarts: this.restarts,
      }],
    });
  }

  crash(): void {
    this.alive = false;
    this.beat();
  }

  close(): void {
    for (const stop of this.stops) stop();
  }
}

/** Serves `order.cancel`, recording each request. */
function serveCancel(tb: TestBus, seen: CancelRequest[]): () => void {
  return tb.bus.serve(order.cancel, (req) => {
    seen.push({ orderId: req.orderId, reason: req.reason, by: req.by });
    return ok({ success: true, refundInitiated: true, order: orderView(req.orderId, "CANCELLED") });
  });
}

function orderView(orderId: string, status: OrderStatus): order.OrderView {
  return {
    orderId,
    machineId: "m-test",
    pizzaId: "margherita",
    status,
    totalAmountCents: 900,
    placedAt: 1,
    readyAt: null,
    dispensedAt: null,
    pickupCode: "1234",
    queuePosition: null,
    estimatedReadyAt: null,
    pickupLocked: false,
    payment: null,
  };
}

/** Lets in-flight messages land before asserting that something did not happen. */
async function settle(rig: Rig): Promise<void> {
  await rig.status();
  await new Promise((r) => setTimeout(r, 150));
  await rig.status();
}

const uuid = () => crypto.randomUUID();

Deno.test("supervisor: faults abort orders once", async (t) => {
  await t.step(
    "an oven fault during an order cancels it once and raises ORDER_ABORTED",
    async () => {
      const rig = await startRig({ speed: 10 });
      try {
        const cancels: CancelRequest[] = [];
        serveCancel(rig.tb, cancels);
        const orderId = uuid();
        const fault = {
          code: "OVER_TEMPERATURE" as const,
          message: "oven above 300 °C",
          temperatureC: 305,
          activeOrderId: orderId,
        };
        rig.tb.bus.publish(oven.fault, fault);
        rig.tb.bus.publish(oven.fault, fault);
        rig.tb.bus.publish(arm.fault, { code: "JAM", message: "jammed", activeOrderId: orderId });
        await waitFor("the cancel", () => cancels.length >= 1 ? true : undefined);
        await settle(rig);
        assert.equal(cancels.length, 1);
        assert.equal(cancels[0]!.orderId, orderId);
        assert.equal(cancels[0]!.by, "SUPERVISOR");
        assert.match(cancels[0]!.reason, /oven fault OVER_TEMPERATURE/);

        const s = await rig.status();
        const aborted = s.alerts.filter((a) => a.type === "ORDER_ABORTED");
        assert.equal(aborted.length, 1);
        assert.equal(aborted[0]!.severity, "CRITICAL");
        assert.equal(aborted[0]!.orderId, orderId);
        assert.ok(rig.ownAlerts.some((a) => a.type === "ORDER_ABORTED" && a.orderId === orderId));
        assert.equal(s.status, "OPERATIONAL", "an order fault alone does not stop the machine");
      } finally {
        await rig.close();
      }
    },
  );

  await t.step("a fault without an active order cancels nothing", async () => {
    const rig = await startRig({ speed: 10 });
    try {
      const cancels: CancelRequest[] = [];
      serveCancel(rig.tb, cancels);
      rig.tb.bus.publish(arm.fault, { code: "JAM", message: "jammed", activeOrderId: null });
      await settle(rig);
      assert.equal(cancels.length, 0);
      assert.equal(rig.sup.alive(), true);
    } finally {
      await rig.close();
    }
  });

  await t.step(
    "with the order actor away at first, the cancel is retried until it arrives",
    async () => {
      const rig = await startRig({ speed: 10 });
      try {
        const orderId = uuid();
        rig.tb.bus.publish(arm.fault, {
          code: "DOOR_JAM",
          message: "door stuck",
          activeOrderId: orderId,
        });
        await waitFor(
          "a failed cancel attempt",
          () =>
            rig.tb.logLines.some((l) => l.includes("no answer yet, retrying")) ? true : undefined,
        );
        const cancels: CancelRequest[] = [];
        serveCancel(rig.tb, cancels);
        await waitFor("the retried cancel", () => cancels.length >= 1 ? true : undefined, 15_000);
        await settle(rig);
        assert.equal(cancels.length, 1);
        assert.equal(cancels[0]!.orderId, orderId);
        assert.match(cancels[0]!.reason, /arm fault DOOR_JAM/);
      } finally {
        await rig.close();
      }
    },
  );
});

Deno.test("supervisor: safety trip, card reader, maintenance", async (t) => {
  await t.step(
    "a safety trip is ERROR and cancels PAID and PREPARING orders, keeps READY",
    async () => {
      const rig = await startRig({ speed: 20 });
      try {
        const ids = { paid: uuid(), preparing: uuid(), ready: uuid(), pending: uuid() };
        rig.tb.bus.serve(order.list, () =>
          ok({
            orders: [
              orderView(ids.paid, "PAID"),
              orderView(ids.preparing, "PREPARING"),
              orderView(ids.ready, "READY"),
              orderView(ids.pending, "PENDING"),
            ],
          }));
        const cancels: CancelRequest[] = [];
        serveCancel(rig.tb, cancels);

        rig.tb.bus.publish(safety.tripped, { causes: ["ESTOP"], latchedAt: 1 });
        rig.tb.bus.publish(safety.state, { status: safetyStatus(true) });
        const s = await rig.statusWhere("ERROR", (s) => s.status === "ERROR");
        assert.equal(s.reason, "safety trip: ESTOP");
        await waitFor("two cancels", () => cancels.length >= 2 ? true : undefined);
        await settle(rig);
        assert.deepEqual(cancels.map((c) => c.orderId).sort(), [ids.paid, ids.preparing].sort());
        assert.ok(cancels.every((c) => c.by === "SUPERVISOR" && c.reason === "safety trip: ESTOP"));
        assert.ok(
          rig.machineEvents.some((m) => m.status === "ERROR" && m.reason === "safety trip: ESTOP"),
        );

        rig.tb.bus.publish(safety.state, { status: safetyStatus(false) });
        const after = await rig.statusWhere("OPERATIONAL", (s) => s.status === "OPERATIONAL");
        assert.equal(after.reason, null);
        await waitFor(
          "machine OPERATIONAL published",
          () => rig.machineEvents.at(-1)?.status === "OPERATIONAL" ? true : undefined,
        );
        assert.equal(cancels.length, 2);
      } finally {
        await rig.close();
      }
    },
  );

  await t.step("card reader offline is DEGRADED and cash only, until it is back", async () => {
    const rig = await startRig({ speed: 20 });
    try {
      rig.tb.bus.publish(payment.readerChanged, { cardReaderOnline: false });
      const s = await rig.statusWhere("DEGRADED", (s) => s.status === "DEGRADED");
      assert.equal(s.cashOnly, true);
      await waitFor(
        "machine DEGRADED published",
        () =>
          rig.machineEvents.some((m) => m.status === "DEGRADED" && m.cashOnly) ? true : undefined,
      );
      rig.tb.bus.publish(payment.readerChanged, { cardReaderOnline: true });
      const back = await rig.statusWhere("OPERATIONAL", (s) => s.status === "OPERATIONAL");
      assert.equal(back.cashOnly, false);
    } finally {
      await rig.close();
    }
  });

  await t.step("maintenance outranks DEGRADED, ERROR outranks maintenance", async () => {
    const rig = await startRig({ speed: 20 });
    try {
      const on = await rig.tb.bus.request(supervisor.maintenance, {
        enable: true,
        reason: "cleaning the oven",
      }, patient);
      assert.ok(on.ok);
      assert.equal(on.value.status, "MAINTENANCE");
      assert.equal(on.value.maintenance, true);
      assert.match(on.value.reason ?? "", /cleaning the oven/);
      await waitFor(
        "machine MAINTENANCE published",
        () => rig.machineEvents.some((m) => m.status === "MAINTENANCE") ? true : undefined,
      );

      rig.tb.bus.publish(payment.readerChanged, { cardReaderOnline: false });
      const both = await rig.statusWhere("cash only", (s) => s.cashOnly);
      assert.equal(both.status, "MAINTENANCE");

      rig.tb.bus.publish(safety.state, { status: safetyStatus(true) });
      await rig.statusWhere("ERROR", (s) => s.status === "ERROR");
      rig.tb.bus.publish(safety.state, { status: safetyStatus(false) });
      await rig.statusWhere("MAINTENANCE again", (s) => s.status === "MAINTENANCE");

      const off = await rig.tb.bus.request(supervisor.maintenance, {
        enable: false,
        reason: "done",
      }, patient);
      assert.ok(off.ok);
      assert.equal(off.value.status, "DEGRADED");
      assert.equal(off.value.maintenance, false);
      rig.tb.bus.publish(payment.readerChanged, { cardReaderOnline: true });
      await rig.statusWhere("OPERATIONAL", (s) => s.status === "OPERATIONAL");
    } finally {
      await rig.close();
    }
  });

  await t.step("machine is republished, so a late listener learns it", async () => {
    const rig = await startRig({ speed: 20 });
    try {
      await rig.tb.bus.request(
        supervisor.maintenance,
        { enable: true, reason: "restock" },
        patient,
      );
      const late: MachineEvent[] = [];
      rig.tb.bus.subscribe(supervisor.machine, rig.tb.machineId, (m) => late.push(m));
      await waitFor("a republished machine event", () => late.length ? true : undefined);
      assert.equal(late[0]!.status, "MAINTENANCE");
    } finally {
      await rig.close();
    }
  });
});

Deno.test("supervisor: restarts", async (t) => {
  await t.step("a steady component is never restarted; its last-seen keeps up", async () => {
    const rig = await startRig({ speed: 20 });
    const host = new FakeHost(rig.tb, "oven");
    try {
      await rig.statusWhere("oven watched", (s) => s.components.oven.lastSeen !== null);
      // Routine beats skip the machine; the ticks must still carry them in.
      const until = rig.tb.clock.now() + 3 * 15_000;
      await waitFor("three heartbeat timeouts", () => rig.tb.clock.now() > until || undefined);
      const s = await rig.status();
      assert.equal(host.restartRequests, 0);
      assert.equal(s.components.oven.alive, true);
      assert.ok(rig.tb.clock.now() - s.components.oven.lastSeen! < 15_000);
    } finally {
      host.close();
      await rig.close();
    }
  });

  await t.step("a component that stops sending heartbeats is restarted", async () => {
    const rig = await startRig({ speed: 10 });
    const host = new FakeHost(rig.tb, "carousel");
    try {
      await rig.statusWhere("carousel watched", (s) => s.components.carousel.lastSeen !== null);
      host.silent = true;
      await waitFor("a restart request", () => host.restartRequests >= 1 ? true : undefined);
      const s = await rig.statusWhere("carousel back", (s) => s.components.carousel.alive);
      assert.equal(s.status, "OPERATIONAL");
      assert.ok(s.alerts.some((a) => a.type === "EQUIPMENT_FAILURE" && /carousel/.test(a.message)));
    } finally {
      host.close();
      await rig.close();
    }
  });

  await t.step("4 crashes within 60 s: 3 restarts, then ERROR and a CRITICAL alert", async () => {
    // A long heartbeat timeout keeps this about crashes only.
    const rig = await startRig({ speed: 5, heartbeatTimeoutMs: 600_000 });
    const host = new FakeHost(rig.tb, "oven");
    try {
      for (let n = 1; n <= 3; n++) {
        host.crash();
        await waitFor(`restart ${n}`, () => host.restartRequests >= n ? true : undefined);
        await rig.statusWhere(`oven alive after restart ${n}`, (s) => s.components.oven.alive);
      }
      host.crash();
      const s = await rig.statusWhere("ERROR", (s) => s.status === "ERROR");
      assert.match(s.reason ?? "", /restart limit reached: oven/);
      const failure = s.alerts.find((a) => a.type === "EQUIPMENT_FAILURE");
      assert.equal(failure?.severity, "CRITICAL");
      assert.match(failure?.message ?? "", /oven/);
      assert.equal(s.alerts.filter((a) => a.type === "EQUIPMENT_FAILURE").length, 1);
      assert.ok(
        rig.ownAlerts.some((a) => a.type === "EQUIPMENT_FAILURE" && a.severity === "CRITICAL"),
      );

      // The host keeps reporting the crash; no fourth restart comes.
      const beats = rig.tb.clock.now();
      await waitFor(
        "3 more heartbeats",
        () => rig.tb.clock.now() - beats > 3_000 ? true : undefined,
      );
      await settle(rig);
      assert.equal(host.restartRequests, 3);
      assert.equal((await rig.status()).status, "ERROR");

      // A technician brings it back by hand: the machine recovers.
      host.alive = true;
      host.beat();
      await rig.statusWhere("OPERATIONAL", (s) => s.status === "OPERATIONAL");
    } finally {
      host.close();
      await rig.close();
    }
  });
});

Deno.test("supervisor: alerts and bad input", async (t) => {
  await t.step("component alerts are collected, deduplicated, resolved by id", async () => {
    const rig = await startRig({ speed: 20 });
    try {
      const low = (alertId: string, message: string) => ({
        alertId,
        type: "LOW_INVENTORY" as const,
        severity: "WARNING" as const,
        message,
        resolved: false,
        createdAt: rig.tb.clock.now(),
        resolvedAt: null,
      });
      rig.tb.bus.publish(alertOf.carousel, low("c-1", "2 margherita left"));
      rig.tb.bus.publish(alertOf.carousel, low("c-2", "1 margherita left"));
      const s = await rig.statusWhere(
        "the updated alert",
        (s) => s.alerts.some((a) => a.message === "1 margherita left"),
      );
      const lows = s.alerts.filter((a) => a.type === "LOW_INVENTORY");
      assert.equal(lows.length, 1);
      assert.equal(lows[0]!.alertId, "c-1");
      assert.equal(lows[0]!.machineId, rig.tb.machineId);

      const resolved = await rig.tb.bus.request(
        supervisor.resolveAlert,
        { alertId: "c-1" },
        patient,
      );
      assert.ok(resolved.ok);
      assert.equal(resolved.value.resolved, true);
      assert.equal((await rig.status()).alerts.length, 0);

      const unknown = await rig.tb.bus.request(
        supervisor.resolveAlert,
        { alertId: "nope" },
        patient,
      );
      assert.equal(!unknown.ok && unknown.error.code, "NOT_FOUND");
      assert.equal(rig.ownAlerts.length, 0, "received alerts are not republished");
    } finally {
      await rig.close();
    }
  });

  await t.step(
    "bad requests are BAD_REQUEST and change nothing; odd events are dropped",
    async () => {
      const rig = await startRig({ speed: 20 });
      try {
        const before = await rig.status();
        const raw = async (subject: string, body: unknown) => {
          const reply = await rig.tb.raw.request(
            subject,
            new TextEncoder().encode(JSON.stringify(body)),
            60_000,
          );
          return JSON.parse(new TextDecoder().decode(reply));
        };
        const envelope = { id: "x1", machineId: rig.tb.machineId, ts: 1 };
        for (
          const body of [
            { ...envelope, enable: "yes", reason: "x" },
            { ...envelope, enable: true, reason: "" },
            { ...envelope, enable: true },
          ]
        ) {
          const reply = await raw(supervisor.maintenance.subject(rig.tb.machineId), body);
          assert.equal(reply.ok, false);
          assert.equal(reply.error.code, "BAD_REQUEST");
        }
        const badResolve = await raw(supervisor.resolveAlert.subject(rig.tb.machineId), envelope);
        assert.equal(badResolve.error.code, "BAD_REQUEST");

        const junk = new TextEncoder().encode("{not json");
        for (
          const subject of [
            heartbeat.subject(rig.tb.machineId),
            oven.fault.subject(rig.tb.machineId),
            safety.state.subject(rig.tb.machineId),
            payment.readerChanged.subject(rig.tb.machineId),
          ]
        ) rig.tb.raw.publish(subject, junk);
        rig.tb.raw.publish(
          heartbeat.subject(rig.tb.machineId),
          new TextEncoder().encode(
            JSON.stringify({
              ...envelope,
              host: "arm",
              beats: [{ component: "arm", state: "idle", alive: "no", restarts: 0 }],
            }),
          ),
        );
        await settle(rig);

        const after = await rig.status();
        assert.equal(after.status, before.status);
        assert.equal(after.reason, before.reason);
        assert.equal(after.maintenance, false);
        assert.equal(after.cashOnly, false);
        assert.deepEqual(after.alerts, before.alerts);
        assert.equal(after.components.oven.lastSeen, null);
        assert.equal(after.components.arm.lastSeen, null);
        assert.equal(rig.sup.alive(), true);
        assert.ok(rig.tb.bus.stats.badEvents >= 5);
      } finally {
        await rig.close();
      }
    },
  );
});
