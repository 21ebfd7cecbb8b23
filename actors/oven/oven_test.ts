import assert from "node:assert/strict";
import { createCryptoRandom } from "../../random/random.ts";
import { safetyStatus, testActorContext, testConfig } from "../../testing/fixtures.ts";
import { connectTestBus, type TestBus, waitFor } from "../../testing/nats.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { createSimOven, type SimOvenOptions } from "../../hardware/sim/oven.ts";
import type { OvenDriver } from "../../hardware/oven.ts";
import type { EventMessage } from "../../protocol/define.ts";
import * as common from "../../protocol/common.ts";
import * as oven from "../../protocol/oven.ts";
import * as order from "../../protocol/order.ts";
import * as safety from "../../protocol/safety.ts";
import type { RunningActor } from "../actor.ts";
import { startOven } from "./mod.ts";

/** Wall timers nest-clamp to ~4 ms, so one 100 ms control tick is about 1 s of clock here. */
const speed = 200;
/** Request deadlines are clock ms: give each request five wall seconds. */
const timeoutMs = 5_000 * speed;
const random = createCryptoRandom();

/** A `utcOffsetMin` that makes local time `localHour`:05 right now. */
function offsetForLocalHour(nowMs: number, localHour: number): number {
  const utcMinOfDay = Math.floor(nowMs / 60_000) % 1440;
  let offset = ((localHour * 60 + 5 - utcMinOfDay) % 1440 + 1440) % 1440;
  if (offset > 840) offset -= 1440;
  return offset;
}

interface Rig {
  tb: TestBus;
  plant: SimPlant;
  model: ReturnType<typeof createSimOven>["model"];
  actor: RunningActor;
  temperatures: EventMessage<typeof oven.temperature>[];
  progress: EventMessage<typeof oven.progress>[];
  cooked: EventMessage<typeof oven.cooked>[];
  faults: (EventMessage<typeof oven.fault> & { heaterPctAtEvent: number })[];
  alerts: EventMessage<(typeof common.alert)["oven"]>[];
  /** Clock times of every heater write. */
  heaterWritesAtMs: number[];
  status(): Promise<oven.OvenStatus>;
  close(): Promise<void>;
}

/** A fresh machine with a simulated oven and the oven actor; local time `localHour`:05. */
async function rig(
  options: { localHour?: number; oven?: SimOvenOptions; driver?: OvenDriver } = {},
): Promise<Rig> {
  const tb = await connectTestBus({ speed });
  const plant = new SimPlant(tb.clock);
  const sim = createSimOven(plant, options.oven);
  const utcOffsetMin = offsetForLocalHour(tb.clock.now(), options.localHour ?? 3);
  const inner = options.driver ?? sim.driver;
  const heaterWritesAtMs: number[] = [];
  const actor = startOven(testActorContext(tb, testConfig({ utcOffsetMin })), {
    readTemperatureC: () => inner.readTemperatureC(),
    setHeaterPct: (pct) => {
      heaterWritesAtMs.push(tb.clock.now());
      return inner.setHeaterPct(pct);
    },
  });
  const r: Rig = {
    tb,
    plant,
    model: sim.model,
    actor,
    temperatures: [],
    progress: [],
    cooked: [],
    faults: [],
    alerts: [],
    heaterWritesAtMs,
    status: async () => {
      const reply = await tb.bus.request(oven.status, {}, { timeoutMs });
      assert.ok(reply.ok, JSON.stringify(reply));
      return reply.value;
    },
    close: async () => {
      await actor.stop();
      await tb.close();
    },
  };
  tb.bus.subscribe(oven.temperature, tb.machineId, (m) => r.temperatures.push(m));
  tb.bus.subscribe(oven.progress, tb.machineId, (m) => r.progress.push(m));
  tb.bus.subscribe(oven.cooked, tb.machineId, (m) => r.cooked.push(m));
  tb.bus.subscribe(
    oven.fault,
    tb.machineId,
    (m) => r.faults.push({ ...m, heaterPctAtEvent: sim.model.heaterPct() }),
  );
  tb.bus.subscribe(common.alert.oven, tb.machineId, (m) => r.alerts.push(m));
  await waitFor("first temperature event", () => r.temperatures.length > 0 || undefined);
  return r;
}

async function waitForState(r: Rig, state: oven.OvenState, wallMs = 10_000) {
  return await waitFor(`oven state "${state}"`, async () => {
    const s = await r.status();
    return s.state === state ? s : undefined;
  }, wallMs);
}

function cookRequest(cookTimeMs = 60_000, targetC = 220) {
  return { orderId: random.uuid(), pizzaId: "margherita", targetC, cookTimeMs };
}

Deno.test("oven: cooks a pizza from cold", async (t) => {
  const r = await rig();
  try {
    const req = cookRequest(120_000);
    let sessionId = "";

    await t.step("cook starts a HEATING session", async () => {
      const reply = await r.tb.bus.request(oven.cook, req, { timeoutMs });
      assert.ok(reply.ok, JSON.stringify(reply));
      assert.equal(reply.value.status, "HEATING");
      assert.equal(reply.value.orderId, req.orderId);
      assert.equal(reply.value.targetTemperatureC, 220);
      assert.equal(reply.value.timeRemainingMs, 120_000);
      assert.ok(reply.value.startTemperatureC < 30);
      sessionId = reply.value.sessionId;
      assert.equal((await r.status()).state, "cooking");
    });

    await t.step("cook is idempotent per order", async () => {
      const again = await r.tb.bus.request(oven.cook, req, { timeoutMs });
      assert.ok(again.ok);
      assert.equal(again.value.sessionId, sessionId);
    });

    await t.step("another order's cook is a CONFLICT naming the running order", async () => {
      const other = await r.tb.bus.request(oven.cook, cookRequest(), { timeoutMs });
      assert.equal(!other.ok && other.error.code, "CONFLICT");
      assert.match(!other.ok ? other.error.message : "", new RegExp(req.orderId));
    });

    await t.step("preheat is refused while cooking", async () => {
      const reply = await r.tb.bus.request(oven.preheat, { targetC: 150 }, { timeoutMs });
      assert.equal(!reply.ok && reply.error.code, "CONFLICT");
    });

    await t.step("HEATING, then COOKING, then cooked, with progress on the way", async () => {
      const done = await waitFor("cooked", () => r.cooked[0], 15_000);
      assert.equal(done.orderId, req.orderId);
      assert.equal(done.session.status, "COMPLETE");
      assert.equal(done.session.sessionId, sessionId);
      assert.equal(done.session.timeRemainingMs, 0);
      const mine = r.progress.filter((p) => p.orderId === req.orderId);
      const statuses = [...new Set(mine.map((p) => p.status))];
      assert.deepEqual(statuses, ["HEATING", "COOKING", "COMPLETE"]);
      assert.ok(mine.filter((p) => p.status === "HEATING").length >= 10, "progress on the way");
    });

    await t.step("baked for the full time at temperature", () => {
      const done = r.cooked[0]!;
      const bakingFrom = r.progress.find((p) => p.status === "COOKING")!.ts;
      // The event is stamped a moment after the sample that entered the band.
      const stampSlackMs = 1_000;
      assert.ok(done.session.completedAt! - bakingFrom >= 120_000 - stampSlackMs);
      const during = r.temperatures.filter((m) =>
        m.ts > bakingFrom && m.ts <= done.session.completedAt!
      );
      // The keepalive alone makes one event every 10 s of the 120 s bake.
      assert.ok(during.length >= 12, `only ${during.length} samples while baking`);
      for (const m of during) {
        assert.ok(Math.abs(m.temperatureC - 220) <= 10, `left the band: ${m.temperatureC}`);
      }
      // The band is entered at 210 °C; the PID closes in on 220 within about 30 s.
      const settled = during.filter((m) => m.ts >= bakingFrom + 60_000);
      for (const m of settled) {
        assert.ok(Math.abs(m.temperatureC - 220) <= 3, `not held: ${m.temperatureC}`);
      }
      // The heat-up alone takes minutes: the session cannot have been cut short.
      assert.ok(done.session.completedAt! - done.session.startedAt >= 3 * 60_000);
    });

    await t.step(
      "the heater is steered every 100 ms of a bake, every second after it",
      async () => {
        const done = r.cooked[0]!;
        const { startedAt, completedAt } = done.session;
        const inBake = r.heaterWritesAtMs.filter((at) => at > startedAt && at <= completedAt!);
        const bakeS = (completedAt! - startedAt) / 1000;
        assert.ok(Math.abs(inBake.length - bakeS * 10) <= bakeS, `${inBake.length} in ${bakeS} s`);
        // Time never passes a pending timer, so clock seconds hold ten ticks however busy the host.
        const after = completedAt! + 5_000;
        await waitFor("30 s after the bake", () => r.tb.clock.now() > after + 30_000 || undefined);
        const idle = r.heaterWritesAtMs.filter((at) => at > after && at <= after + 30_000);
        assert.ok(idle.length >= 28 && idle.length <= 32, `${idle.length} writes in 30 idle s`);
      },
    );

    await t.step(
      "after cooking the oven follows the policy (off-peak, no queue: cools)",
      async () => {
        const s = await waitForState(r, "cooling");
        assert.equal(s.targetC, 0);
        assert.equal(s.session, null);
        assert.equal(r.model.heaterPct(), 0);
        const again = await r.tb.bus.request(oven.cook, req, { timeoutMs });
        assert.ok(again.ok);
        assert.equal(again.value.status, "COMPLETE", "a repeat returns the ended session");
      },
    );

    await t.step("energy was used", () => {
      assert.ok(r.plant.snapshot().ovenEnergyWh > 100);
    });
  } finally {
    await r.close();
  }
  assert.equal(r.model.heaterPct(), 0, "stop() turns the heater off");
});

Deno.test("oven: a cold pizza pauses the bake until the oven is back in the band", async () => {
  const r = await rig({ oven: { startTempC: 220 } });
  try {
    const req = cookRequest(30_000);
    // A queued order makes the oven hold 220, so a slow host cannot let it cool first.
    r.tb.bus.publish(order.queue, { length: 1, orderIds: [req.orderId] });
    await waitForState(r, "holding");
    const reply = await r.tb.bus.request(oven.cook, req, { timeoutMs });
    assert.ok(reply.ok);
    // Already hot: the bake begins at the session's first reading, at the loop's next tick.
    await waitFor(
      "baking",
      () => r.progress.find((p) => p.orderId === req.orderId && p.status === "COOKING"),
    );
    r.model.loadPizza(60_000); // A big one: about 23 °C lost.
    const done = await waitFor("cooked", () => r.cooked[0], 15_000);
    const belowBand = r.temperatures.filter((m) =>
      m.ts >= reply.value.startedAt && m.temperatureC < 210
    );
    assert.ok(belowBand.length > 0, "the load cooled the oven below the band");
    // Time below the band did not count.
    assert.ok(done.session.completedAt! - done.session.startedAt > 30_000 + 5_000);
  } finally {
    await r.close();
  }
});

Deno.test("oven: faults turn the heater off first and end the session", async (t) => {
  await t.step("thermocouple failure mid-cook → THERMOCOUPLE_RANGE", async () => {
    const r = await rig({ oven: { startTempC: 215 } });
    try {
      const req = cookRequest(600_000);
      assert.ok((await r.tb.bus.request(oven.cook, req, { timeoutMs })).ok);
      await waitFor("heater on", () => r.model.heaterPct() > 0 || undefined);
      r.plant.set("thermocoupleFailed", true);
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "THERMOCOUPLE_RANGE");
      assert.equal(fault.activeOrderId, req.orderId);
      assert.equal(fault.heaterPctAtEvent, 0);
      assert.equal(r.plant.snapshot().heaterPct, 0);
      const alert = await waitFor("alert", () => r.alerts[0]);
      assert.equal(alert.severity, "CRITICAL");
      assert.equal(alert.type, "EQUIPMENT_FAILURE");
      assert.equal(alert.orderId, req.orderId);
      await waitFor(
        "final ERROR progress",
        () => r.progress.find((p) => p.orderId === req.orderId && p.status === "ERROR"),
      );
      const s = await r.status();
      assert.equal(s.state, "fault");
      assert.equal(s.fault?.code, "THERMOCOUPLE_RANGE");
      assert.equal(s.targetC, 0);
      const session = await r.tb.bus.request(oven.cook, req, { timeoutMs });
      assert.ok(session.ok);
      assert.equal(session.value.status, "ERROR");

      // In fault: no new cooking, no preheat, and the heater stays off.
      const other = await r.tb.bus.request(oven.cook, cookRequest(), { timeoutMs });
      assert.equal(!other.ok && other.error.code, "CONFLICT");
      const pre = await r.tb.bus.request(oven.preheat, { targetC: 150 }, { timeoutMs });
      assert.equal(!pre.ok && pre.error.code, "CONFLICT");
      r.tb.bus.publish(order.queue, { length: 2, orderIds: [random.uuid(), random.uuid()] });
      await waitFor("two more temperature events", () => {
        const after = r.temperatures.filter((m) => m.ts > fault.ts);
        return after.length >= 2 || undefined;
      });
      assert.equal(r.model.heaterPct(), 0);

      // Reset is refused while the thermocouple is still open...
      const refused = await r.tb.bus.request(oven.reset, {}, { timeoutMs });
      assert.equal(!refused.ok && refused.error.code, "CONFLICT");
      assert.match(!refused.ok ? refused.error.message : "", /1372/);
      // ...and accepted once it reads in range again.
      r.plant.set("thermocoupleFailed", false);
      const reset = await waitFor("reset accepted", async () => {
        const reply = await r.tb.bus.request(oven.reset, {}, { timeoutMs });
        return reply.ok ? reply.value : undefined;
      });
      assert.notEqual(reset.state, "fault");
      assert.equal(reset.fault, null);
      // Orders are queued, so the policy asks for 220 again.
      assert.equal(reset.targetC, 220);
    } finally {
      await r.close();
    }
  });

  await t.step("heater failure → HEATING_TOO_SLOW", async () => {
    const r = await rig();
    try {
      r.plant.set("heaterFailed", true);
      const req = cookRequest();
      assert.ok((await r.tb.bus.request(oven.cook, req, { timeoutMs })).ok);
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "HEATING_TOO_SLOW");
      assert.equal(fault.activeOrderId, req.orderId);
      assert.equal(fault.heaterPctAtEvent, 0);
      const s = await r.status();
      assert.equal(s.state, "fault");
      assert.equal(s.heaterPct, 0);
      // The thermocouple is fine, so a technician may reset.
      r.plant.set("heaterFailed", false);
      const reset = await r.tb.bus.request(oven.reset, {}, { timeoutMs });
      assert.ok(reset.ok);
      assert.equal(reset.value.state, "off");
    } finally {
      await r.close();
    }
  });

  await t.step("safety trip → POWER_CUT; back to off once safety clears", async () => {
    const r = await rig({ oven: { startTempC: 215 } });
    try {
      const req = cookRequest(600_000);
      assert.ok((await r.tb.bus.request(oven.cook, req, { timeoutMs })).ok);
      await waitFor("heater on", () => r.model.heaterPct() > 0 || undefined);
      r.plant.set("heaterPowerCut", true);
      r.tb.bus.publish(safety.tripped, { causes: ["ESTOP"], latchedAt: r.tb.clock.now() });
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "POWER_CUT");
      assert.equal(fault.activeOrderId, req.orderId);
      assert.equal(fault.heaterPctAtEvent, 0);
      const refused = await r.tb.bus.request(oven.reset, {}, { timeoutMs });
      assert.equal(!refused.ok && refused.error.code, "CONFLICT");
      assert.match(!refused.ok ? refused.error.message : "", /safety/);

      // Still tripped: stays in fault.
      r.tb.bus.publish(safety.state, { status: safetyStatus(true) });
      await r.tb.raw.flush();
      assert.equal((await r.status()).state, "fault");
      r.plant.set("heaterPowerCut", false);
      r.tb.bus.publish(safety.state, { status: safetyStatus(false) });
      const s = await waitFor("fault left", async () => {
        const st = await r.status();
        return st.state !== "fault" ? st : undefined;
      });
      // Still hot and nothing queued off-peak: cooling with the heater off, never resuming the bake.
      assert.equal(s.state, "cooling");
      assert.equal(s.targetC, 0);
      assert.equal(s.session, null);
      assert.equal(r.model.heaterPct(), 0);
    } finally {
      await r.close();
    }
  });

  await t.step("a runaway reading → OVER_TEMPERATURE", async () => {
    let readingC = 200;
    const writes: number[] = [];
    const driver: OvenDriver = {
      readTemperatureC: () => Promise.resolve(readingC),
      setHeaterPct: (pct) => {
        writes.push(pct);
        return Promise.resolve();
      },
    };
    const r = await rig({ driver });
    try {
      const req = cookRequest();
      assert.ok((await r.tb.bus.request(oven.cook, req, { timeoutMs })).ok);
      await waitFor("heater on", () => writes.some((w) => w > 0) || undefined);
      readingC = 300;
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "OVER_TEMPERATURE");
      assert.equal(fault.activeOrderId, req.orderId);
      assert.equal(writes.at(-1), 0);
      const alert = await waitFor("alert", () => r.alerts[0]);
      assert.equal(alert.type, "TEMPERATURE_ISSUE");
    } finally {
      await r.close();
    }
  });
});

Deno.test("oven: a silent or failing PLC is a thermocouple fault", async (t) => {
  /** A driver whose reads the test can make hang or fail. */
  function scriptedDriver() {
    const d = {
      mode: "ok" as "ok" | "hang" | "fail",
      writes: [] as number[],
      driver: {
        readTemperatureC: () => {
          if (d.mode === "hang") return new Promise<number>(() => {});
          if (d.mode === "fail") return Promise.reject(new Error("Modbus timeout"));
          return Promise.resolve(180);
        },
        setHeaterPct: (pct: number) => {
          d.writes.push(pct);
          return Promise.resolve();
        },
      } satisfies OvenDriver,
    };
    return d;
  }

  await t.step("no reading for 20 s of clock → THERMOCOUPLE_RANGE, heater off", async () => {
    const d = scriptedDriver();
    const r = await rig({ driver: d.driver });
    try {
      r.tb.bus.publish(order.queue, { length: 1, orderIds: [random.uuid()] });
      await waitFor("heater on", () => d.writes.some((w) => w > 0) || undefined);
      d.mode = "hang";
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "THERMOCOUPLE_RANGE");
      assert.match(fault.message, /No thermocouple reading/);
      assert.equal(d.writes.at(-1), 0);
    } finally {
      await r.close();
    }
  });

  await t.step("a failed read → THERMOCOUPLE_RANGE naming the error", async () => {
    const d = scriptedDriver();
    const r = await rig({ driver: d.driver });
    try {
      d.mode = "fail";
      const fault = await waitFor("fault event", () => r.faults[0]);
      assert.equal(fault.code, "THERMOCOUPLE_RANGE");
      assert.match(fault.message, /Modbus timeout/);
      assert.equal(d.writes.at(-1), 0);
      assert.ok(r.actor.alive(), "a driver error never kills the actor");
    } finally {
      await r.close();
    }
  });
});

Deno.test("oven: abort", async () => {
  const r = await rig({ oven: { startTempC: 215 } });
  try {
    const req = cookRequest(600_000);
    assert.ok((await r.tb.bus.request(oven.cook, req, { timeoutMs })).ok);
    const first = await r.tb.bus.request(oven.abort, { orderId: req.orderId }, { timeoutMs });
    assert.ok(first.ok, JSON.stringify(first));
    assert.notEqual(first.value.state, "cooking");
    assert.equal(first.value.session, null);
    const again = await r.tb.bus.request(oven.abort, { orderId: req.orderId }, { timeoutMs });
    assert.ok(again.ok, "abort is idempotent");
    const session = await r.tb.bus.request(oven.cook, req, { timeoutMs });
    assert.ok(session.ok);
    assert.equal(session.value.status, "ERROR");
    await waitFor(
      "ERROR progress",
      () => r.progress.find((p) => p.orderId === req.orderId && p.status === "ERROR"),
    );
    const unknown = await r.tb.bus.request(oven.abort, { orderId: random.uuid() }, { timeoutMs });
    assert.equal(!unknown.ok && unknown.error.code, "NOT_FOUND");
    // A new order may cook now.
    assert.ok((await r.tb.bus.request(oven.cook, cookRequest(), { timeoutMs })).ok);
  } finally {
    await r.close();
  }
});

Deno.test("oven: smart preheat policy", async (t) => {
  await t.step("off-peak: a queued order heats to 220, an empty queue turns it off", async () => {
    const r = await rig({ localHour: 3 });
    try {
      assert.equal((await r.status()).state, "off");
      r.tb.bus.publish(order.queue, { length: 1, orderIds: [random.uuid()] });
      const pre = await waitForState(r, "preheating");
      assert.equal(pre.targetC, 220);
      await waitFor("heater on", () => r.model.heaterPct() > 0 || undefined);
      await waitForState(r, "holding");
      r.tb.bus.publish(order.queue, { length: 0, orderIds: [] });
      const cooling = await waitForState(r, "cooling");
      assert.equal(cooling.targetC, 0);
      assert.equal(r.model.heaterPct(), 0);
      await waitForState(r, "off", 15_000);
    } finally {
      await r.close();
    }
  });

  await t.step("peak hours: standby at 150 with nothing queued", async () => {
    const r = await rig({ localHour: 12 });
    try {
      const s = await waitFor("standby target", async () => {
        const st = await r.status();
        return st.targetC === 150 ? st : undefined;
      });
      assert.equal(s.state, "preheating");
      await waitForState(r, "holding");
    } finally {
      await r.close();
    }
  });

  await t.step("a technician's preheat sets the standby target", async () => {
    const r = await rig({ localHour: 3 });
    try {
      const reply = await r.tb.bus.request(oven.preheat, { targetC: 180 }, { timeoutMs });
      assert.ok(reply.ok, JSON.stringify(reply));
      assert.equal(reply.value.targetC, 180);
      assert.equal(reply.value.state, "preheating");
      // The override holds until the policy changes its mind: an order arrives.
      r.tb.bus.publish(order.queue, { length: 1, orderIds: [random.uuid()] });
      await waitFor("policy target", async () => (await r.status()).targetC === 220 || undefined);
    } finally {
      await r.close();
    }
  });
});

Deno.test("oven: bad requests are refused and change nothing", async () => {
  const r = await rig({ localHour: 3 });
  try {
    const before = await r.status();
    const rawRequest = async (subject: string, body: Record<string, unknown>) => {
      const envelope = { id: "x", machineId: r.tb.machineId, ts: 1 };
      const data = await r.tb.raw.request(
        subject,
        new TextEncoder().encode(JSON.stringify({ ...envelope, ...body })),
        timeoutMs,
      );
      return JSON.parse(new TextDecoder().decode(data));
    };
    const hot = await rawRequest(oven.cook.subject(r.tb.machineId), {
      ...cookRequest(),
      targetC: 500,
    });
    assert.equal(hot.error.code, "BAD_REQUEST");
    assert.match(hot.error.message, /targetC/);
    const empty = await rawRequest(oven.preheat.subject(r.tb.machineId), {});
    assert.equal(empty.error.code, "BAD_REQUEST");
    assert.match(empty.error.message, /targetC/);
    const badOrder = await rawRequest(oven.abort.subject(r.tb.machineId), { orderId: "42" });
    assert.equal(badOrder.error.code, "BAD_REQUEST");
    r.tb.raw.publish(order.queue.subject(r.tb.machineId), new TextEncoder().encode("{nope"));
    r.tb.raw.publish(safety.tripped.subject(r.tb.machineId), new TextEncoder().encode("[]"));
    await r.tb.raw.flush();
    const after = await r.status();
    assert.equal(after.state, before.state);
    assert.equal(after.targetC, before.targetC);
    assert.equal(after.session, null);
    assert.equal(after.fault, null);
    assert.ok(r.actor.alive());
    // A reset without a fault is harmless.
    const reset = await r.tb.bus.request(oven.reset, {}, { timeoutMs });
    assert.ok(reset.ok);
    assert.equal(reset.value.state, before.state);
  } finally {
    await r.close();
  }
  assert.equal(r.actor.alive(), false);
});
