import assert from "node:assert/strict";
import { sleep } from "../../clock/clock.ts";
import { createSimArm, type SimArmOptions } from "../../hardware/sim/arm.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import * as arm from "../../protocol/arm.ts";
import * as safety from "../../protocol/safety.ts";
import { alert } from "../../protocol/common.ts";
import type { CommandDef, EventMessage, Result } from "../../protocol/define.ts";
import { createCryptoRandom } from "../../random/random.ts";
import { safetyStatus, testActorContext, testConfig } from "../../testing/fixtures.ts";
import { connectTestBus, waitFor } from "../../testing/nats.ts";
import { type ArmOptions, startArm } from "./mod.ts";
import { openJournal } from "../../journal/journal.ts";

const speed = 100;
/** Request deadline in clock ms: 5 s of wall time. */
const requestTimeoutMs = 5_000 * speed;
const random = createCryptoRandom();

const config = testConfig();

async function setup(
  options: { sim?: SimArmOptions; arm?: Omit<ArmOptions, "journal"> } = {},
) {
  const journal = openJournal(":memory:");
  const tb = await connectTestBus({ speed });
  const plant = new SimPlant(tb.clock);
  const sim = createSimArm(plant, options.sim);
  const events = {
    moved: [] as EventMessage<typeof arm.moved>[],
    door: [] as EventMessage<typeof arm.door>[],
    taken: [] as EventMessage<typeof arm.taken>[],
    fault: [] as EventMessage<typeof arm.fault>[],
    alert: [] as EventMessage<typeof alert.arm>[],
  };
  const m = tb.machineId;
  tb.bus.subscribe(arm.moved, m, (e) => events.moved.push(e));
  tb.bus.subscribe(arm.door, m, (e) => events.door.push(e));
  tb.bus.subscribe(arm.taken, m, (e) => events.taken.push(e));
  tb.bus.subscribe(arm.fault, m, (e) => events.fault.push(e));
  tb.bus.subscribe(alert.arm, m, (e) => events.alert.push(e));
  const start = () =>
    startArm(testActorContext(tb, config), sim.driver, { ...options.arm, journal });
  let actor = start();
  const call = <Q, R>(def: CommandDef<Q, R>, payload: Q): Promise<Result<R>> =>
    tb.bus.request(def, payload, { timeoutMs: requestTimeoutMs });
  const status = async () => {
    const r = await call(arm.status, {});
    assert.ok(r.ok, "status answers");
    return r.value;
  };
  const statusWhere = (what: string, check: (s: arm.ArmStatus) => boolean) =>
    waitFor(what, async () => {
      const s = await status();
      return check(s) ? s : undefined;
    });
  /** Sends a raw JSON body, bypassing client-side validation. */
  const rawCall = async (def: CommandDef<unknown, unknown>, body: string) => {
    const reply = await tb.raw.request(
      def.subject(m),
      new TextEncoder().encode(body),
      requestTimeoutMs,
    );
    return JSON.parse(new TextDecoder().decode(reply));
  };
  /** Waits until everything published so far was delivered back to us. */
  const settle = async () => {
    await tb.raw.flush();
    await sleep(tb.clock, 10 * speed);
  };
  const move = (orderId: string, from: arm.ArmPosition, to: arm.ArmPosition) =>
    call(arm.move, { orderId, from, to });
  const deliver = async (orderId: string) => {
    const first = await move(orderId, "STORAGE", "OVEN");
    assert.ok(first.ok, `move to OVEN starts: ${JSON.stringify(first)}`);
    await waitFor(
      "moved to OVEN",
      () => events.moved.find((e) => e.orderId === orderId && e.position === "OVEN"),
    );
    const second = await move(orderId, "OVEN", "PICKUP");
    assert.ok(second.ok, `move to PICKUP starts: ${JSON.stringify(second)}`);
    await waitFor(
      "moved to PICKUP",
      () => events.moved.find((e) => e.orderId === orderId && e.position === "PICKUP"),
    );
  };
  const tripSafety = () =>
    tb.bus.publish(safety.tripped, { causes: ["ESTOP"], latchedAt: tb.clock.now() });
  const clearSafety = () => tb.bus.publish(safety.state, { status: safetyStatus(false) });
  return {
    tb,
    plant,
    sim,
    events,
    /** The arm actor running now. */
    get actor() {
      return actor;
    },
    /** Stops the arm actor and starts a new one on the same journal and drive: a reboot. */
    async restart() {
      await actor.stop();
      actor = start();
    },
    call,
    status,
    statusWhere,
    rawCall,
    settle,
    move,
    deliver,
    tripSafety,
    clearSafety,
    async close() {
      await actor.stop();
      sim.dispose();
      await tb.close();
    },
  };
}

function conflictMessage<R>(r: Result<R>): string {
  assert.equal(r.ok, false, `expected CONFLICT, got ${JSON.stringify(r)}`);
  assert.equal(!r.ok && r.error.code, "CONFLICT");
  return r.ok ? "" : r.error.message;
}

Deno.test("arm: storage → oven → pickup, the customer takes the pizza once", async (t) => {
  const a = await setup();
  const order = random.uuid();
  try {
    await t.step("starts idle at home", async () => {
      const s = await a.status();
      assert.equal(s.state, "idle");
      assert.equal(s.position, "HOME");
      assert.equal(s.moving, false);
      assert.equal(s.doorOrderId, null);
      assert.deepEqual(s.taken, []);
      assert.equal(a.actor.alive(), true);
    });

    await t.step("a move starts once; repeats report RUNNING then DONE", async () => {
      const first = await a.move(order, "STORAGE", "OVEN");
      assert.deepEqual(first.ok && first.value.status, "RUNNING");
      const again = await a.move(order, "STORAGE", "OVEN");
      assert.ok(again.ok && ["RUNNING", "DONE"].includes(again.value.status));
      await waitFor("moved to OVEN", () => a.events.moved.find((e) => e.position === "OVEN"));
      const done = await a.move(order, "STORAGE", "OVEN");
      assert.deepEqual(done, { ok: true, value: { status: "DONE", position: "OVEN" } });
      await a.settle();
      assert.equal(a.events.moved.length, 1, "one moved event for one move");
      assert.equal(a.events.moved[0]?.orderId, order);
    });

    await t.step("a move must start where the arm is", async () => {
      const msg = conflictMessage(await a.move(random.uuid(), "STORAGE", "PICKUP"));
      assert.match(msg, /at "OVEN", not at "STORAGE"/);
    });

    await t.step(
      "the door stays shut for an order whose pizza is not in the pickup area",
      async () => {
        const msg = conflictMessage(await a.call(arm.openDoor, { orderId: order }));
        assert.match(msg, /not in the pickup area/);
      },
    );

    await t.step("oven → pickup places the pizza", async () => {
      const r = await a.move(order, "OVEN", "PICKUP");
      assert.ok(r.ok);
      await waitFor("moved to PICKUP", () => a.events.moved.find((e) => e.position === "PICKUP"));
      const s = await a.status();
      assert.equal(s.position, "PICKUP");
      assert.equal(s.pizzaInPickup, true);
      assert.equal(s.orderId, order);
      assert.equal(s.state, "idle");
    });

    await t.step("another order cannot open the door", async () => {
      const msg = conflictMessage(await a.call(arm.openDoor, { orderId: random.uuid() }));
      assert.match(msg, /not in the pickup area/);
    });

    await t.step("open_door → taken exactly once → the door closes", async () => {
      const r = await a.call(arm.openDoor, { orderId: order });
      assert.ok(r.ok, JSON.stringify(r));
      await waitFor("door open", () => a.events.door.find((e) => e.open && e.orderId === order));
      await waitFor("taken", () => a.events.taken.find((e) => e.orderId === order));
      await waitFor("door closed", () => a.events.door.find((e) => !e.open));
      const s = await a.statusWhere("idle with door shut", (s) => s.state === "idle");
      assert.equal(s.doorOpen, false);
      assert.equal(s.pizzaInPickup, false);
      assert.equal(a.plant.get("pickupDoorOpen"), false);
      await a.settle();
      assert.equal(a.events.taken.length, 1);
      assert.deepEqual(a.events.door.map((e) => e.open), [true, false]);
    });

    await t.step("status names the taken order, for an order that missed the event", async () => {
      const s = await a.status();
      assert.deepEqual(s.taken, [order]);
      assert.equal(s.doorOrderId, null);
    });

    await t.step("the door does not open again for a taken pizza", async () => {
      const msg = conflictMessage(await a.call(arm.openDoor, { orderId: order }));
      assert.match(msg, /already taken/);
      await a.settle();
      assert.equal(a.events.taken.length, 1);
    });

    await t.step("after a reboot on the same journal, status still names it", async () => {
      await a.restart();
      const s = await a.status();
      assert.deepEqual(s.taken, [order]);
      assert.match(conflictMessage(await a.call(arm.openDoor, { orderId: order })), /taken/);
    });
  } finally {
    await a.close();
  }
});

Deno.test("arm: an absent customer — the door times out, no taken, it can open again", async (t) => {
  // 300 s of clock time (3 s wall) for the checks while the door is open.
  const a = await setup({ arm: { doorTimeoutMs: 300_000 } });
  const order = random.uuid();
  try {
    a.plant.set("customerAbsent", true);
    await a.deliver(order);

    await t.step("while the door is open the arm refuses to move", async () => {
      assert.ok((await a.call(arm.openDoor, { orderId: order })).ok);
      await waitFor("door open", () => a.events.door.find((e) => e.open));
      const s = await a.status();
      assert.equal(s.doorOpen, true);
      assert.equal(s.halted, true);
      assert.equal(s.doorOrderId, order);
      const msg = conflictMessage(await a.move(random.uuid(), "PICKUP", "STORAGE"));
      assert.match(msg, /pickup door/i);
    });

    await t.step("the door closes after its timeout with the pizza still there", async () => {
      await waitFor("door closed", () => a.events.door.find((e) => !e.open), 15_000);
      const s = await a.statusWhere("idle", (s) => s.state === "idle");
      assert.equal(s.pizzaInPickup, true);
      assert.equal(s.doorOrderId, null, "the door cycle ended");
      assert.deepEqual(s.taken, [], "an untouched pizza is not reported taken");
      await a.settle();
      assert.equal(a.events.taken.length, 0);
    });

    await t.step(
      "the customer comes back: the door opens again and the pizza is taken",
      async () => {
        a.plant.set("customerAbsent", false);
        assert.ok((await a.call(arm.openDoor, { orderId: order })).ok);
        await waitFor("taken", () => a.events.taken.find((e) => e.orderId === order));
        await waitFor(
          "door closed twice",
          () => a.events.door.filter((e) => !e.open).length === 2 ? true : undefined,
        );
        await a.settle();
        assert.equal(a.events.taken.length, 1);
        assert.deepEqual((await a.status()).taken, [order]);
      },
    );
  } finally {
    await a.close();
  }
});

Deno.test("arm: refuses to move or open while safety is tripped", async (t) => {
  const a = await setup();
  try {
    await t.step("a safety trip on the bus blocks moves and the door", async () => {
      a.tripSafety();
      await a.statusWhere("halted", (s) => s.halted);
      const msg = conflictMessage(await a.move(random.uuid(), "STORAGE", "OVEN"));
      assert.match(msg, /safety is tripped \(ESTOP\)/);
      const door = conflictMessage(await a.call(arm.openDoor, { orderId: random.uuid() }));
      assert.match(door, /safety is tripped/);
      const s = await a.status();
      assert.equal(s.state, "idle");
      assert.equal(s.position, "HOME");
    });

    await t.step("a cleared safety state lets it move again", async () => {
      a.clearSafety();
      await a.statusWhere("not halted", (s) => !s.halted);
      const order = random.uuid();
      assert.ok((await a.move(order, "HOME", "STORAGE")).ok);
      await waitFor("moved", () => a.events.moved.find((e) => e.orderId === order));
    });

    await t.step("the hardware halt output blocks moves too", async () => {
      a.plant.set("armHalt", true);
      const msg = conflictMessage(await a.move(random.uuid(), "STORAGE", "OVEN"));
      assert.match(msg, /halt output/);
      a.plant.set("armHalt", false);
      const order = random.uuid();
      assert.ok((await a.move(order, "STORAGE", "OVEN")).ok);
      await waitFor("moved", () => a.events.moved.find((e) => e.orderId === order));
    });
    assert.equal(a.events.fault.length, 0);
  } finally {
    await a.close();
  }
});

Deno.test("arm: a trip mid-move halts the arm where it is and faults the order", async (t) => {
  // A slow arm (home → storage → oven takes 6000 s of clock time), so the trip
  // always comes mid-move however loaded the machine is.
  const a = await setup({ sim: { travelScale: 1000 } });
  try {
    const order = random.uuid();
    await t.step("a move is running; another order's move is refused", async () => {
      const r = await a.move(order, "STORAGE", "OVEN");
      assert.deepEqual(r.ok && r.value.status, "RUNNING");
      const msg = conflictMessage(await a.move(random.uuid(), "HOME", "PICKUP"));
      assert.match(msg, /busy moving order/);
    });

    await t.step("a safety trip stops the drive and publishes the fault", async () => {
      a.tripSafety();
      const fault = await waitFor("fault", () => a.events.fault[0]);
      assert.equal(fault.code, "HALTED");
      assert.equal(fault.activeOrderId, order);
      assert.equal(a.sim.driver.position(), null, "stopped between positions");
      assert.equal(a.sim.moving(), false, "no motion under way");
      const al = await waitFor("alert", () => a.events.alert[0]);
      assert.equal(al.type, "EQUIPMENT_FAILURE");
      assert.equal(al.orderId, order);
      const s = await a.status();
      assert.equal(s.state, "fault");
      assert.equal(s.moving, false);
      assert.equal(s.fault?.code, "HALTED");
    });

    await t.step("the halted arm never arrives", async () => {
      await sleep(a.tb.clock, 100_000);
      assert.equal(a.events.moved.length, 0);
      assert.equal(a.sim.moving(), false);
      assert.equal(a.sim.driver.position(), null);
      const msg = conflictMessage(await a.move(order, "STORAGE", "OVEN"));
      assert.match(msg, /fault HALTED/);
    });

    await t.step("reset is refused while tripped, then homes the arm", async () => {
      assert.match(conflictMessage(await a.call(arm.reset, {})), /safety is tripped/);
      a.clearSafety();
      await a.statusWhere("not halted", (s) => !s.halted);
      const r = await a.call(arm.reset, {});
      assert.ok(r.ok);
      assert.equal(r.value.fault, null);
      const s = await a.statusWhere("home", (s) => s.state === "idle");
      assert.equal(s.position, "HOME");
      assert.equal(a.sim.driver.position(), "HOME");
    });

    await t.step("the halt output mid-move halts it as well", async () => {
      const next = random.uuid();
      assert.ok((await a.move(next, "HOME", "PICKUP")).ok);
      a.plant.set("armHalt", true);
      const fault = await waitFor("second fault", () => a.events.fault[1]);
      assert.equal(fault.code, "HALTED");
      assert.equal(fault.activeOrderId, next);
      assert.equal(a.sim.driver.position(), null);
      assert.equal(a.sim.moving(), false);
      a.plant.set("armHalt", false);
      assert.ok((await a.call(arm.reset, {})).ok);
      await a.statusWhere("home again", (s) => s.state === "idle" && s.position === "HOME");
      assert.equal(a.events.moved.length, 0);
    });
  } finally {
    await a.close();
  }
});

Deno.test("arm: a jam faults after the deadline; reset waits for the jam to clear", async (t) => {
  const a = await setup();
  try {
    const order = random.uuid();
    await t.step("a jammed move becomes a JAM fault", async () => {
      a.plant.set("armJam", true);
      const r = await a.move(order, "STORAGE", "OVEN");
      assert.ok(r.ok);
      const fault = await waitFor("jam fault", () => a.events.fault[0]);
      assert.equal(fault.code, "JAM");
      assert.equal(fault.activeOrderId, order);
      assert.notEqual(a.sim.driver.position(), "OVEN");
      const al = await waitFor("alert", () => a.events.alert[0]);
      assert.equal(al.type, "EQUIPMENT_FAILURE");
      assert.equal(al.severity, "CRITICAL");
      assert.equal((await a.status()).fault?.code, "JAM");
    });

    await t.step("reset is refused while the drive reports the jam", async () => {
      assert.match(conflictMessage(await a.call(arm.reset, {})), /armJam/);
      assert.equal((await a.status()).state, "fault");
    });

    await t.step("reset after the jam is cleared homes the arm; it moves again", async () => {
      a.plant.set("armJam", false);
      assert.ok((await a.call(arm.reset, {})).ok);
      await a.statusWhere("home", (s) => s.state === "idle" && s.position === "HOME");
      const resolved = await waitFor(
        "alert resolved",
        () => a.events.alert.find((e) => e.resolved),
      );
      assert.equal(resolved.alertId, a.events.alert[0]?.alertId);
      const next = random.uuid();
      assert.ok((await a.move(next, "HOME", "STORAGE")).ok);
      await waitFor("moved", () => a.events.moved.find((e) => e.orderId === next));
      assert.equal(a.events.fault.length, 1);
    });
  } finally {
    await a.close();
  }
});

Deno.test("arm: bad requests get BAD_REQUEST and change nothing", async () => {
  const a = await setup();
  try {
    const before = await a.status();
    const m = a.tb.machineId;
    const env = `"id":"x1","machineId":"${m}","ts":1`;
    const cases: [typeof arm.move | typeof arm.openDoor, string, RegExp][] = [
      [arm.move, `{${env},"orderId":"${random.uuid()}","from":"HOME","to":"ROOF"}`, /^to: /],
      [arm.move, `{${env},"orderId":"nope","from":"HOME","to":"OVEN"}`, /^orderId: /],
      [arm.move, `{${env},"orderId":"${random.uuid()}","to":"OVEN"}`, /^from: /],
      [arm.openDoor, `{${env}}`, /^orderId: /],
      [arm.openDoor, `{not json`, /not valid JSON/],
    ];
    for (const [def, body, message] of cases) {
      const reply = await a.rawCall(def as CommandDef<unknown, unknown>, body);
      assert.equal(reply.ok, false, body);
      assert.equal(reply.error.code, "BAD_REQUEST", body);
      assert.match(reply.error.message, message);
    }
    await a.settle();
    assert.deepEqual(await a.status(), before);
    assert.equal(a.events.moved.length + a.events.door.length + a.events.fault.length, 0);
    assert.equal(a.actor.alive(), true);
  } finally {
    await a.close();
  }
});
