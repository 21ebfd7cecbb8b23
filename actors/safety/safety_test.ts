import assert from "node:assert/strict";
import type { TimerHandle } from "../../clock/clock.ts";
import { createLocalSafetyIo, RemoteSafetyIo } from "../../hardware/sim/safety_io.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { servePlant } from "../../hardware/sim/plant_server.ts";
import { alert } from "../../protocol/common.ts";
import type { CommandDef, Result } from "../../protocol/define.ts";
import { set as plantSet } from "../../protocol/plant.ts";
import { reset, type SafetyStatus, state, status, tripped } from "../../protocol/safety.ts";
import { testActorContext, testConfig } from "../../testing/fixtures.ts";
import { connectTestBus, type TestBus, waitFor } from "../../testing/nats.ts";
import type { RunningActor } from "../actor.ts";
import {
  OVEN_OVER_TEMPERATURE_C,
  POLL_PERIOD_MS,
  startSafety,
  STORAGE_GRACE_MS,
  STORAGE_LIMIT_C,
} from "./mod.ts";

const SPEED = 1000;

const config = testConfig();

/** Requests with a deadline of ~10 s wall whatever the test bus's speed. */
function call<Q, R>(tb: TestBus, def: CommandDef<Q, R>, payload: Q): Promise<Result<R>> {
  return tb.bus.request(def, payload, { timeoutMs: 10_000 * tb.clock.speed });
}

async function statusOf(tb: TestBus): Promise<SafetyStatus> {
  const r = await call(tb, status, {});
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

/** Events seen on the safety subjects of one machine. */
function recordEvents(tb: TestBus) {
  const seen = {
    tripped: [] as { causes: string[]; latchedAt: number }[],
    alerts: [] as {
      severity: string;
      type: string;
      resolved: boolean;
      alertId: string;
      message: string;
    }[],
    states: [] as SafetyStatus[],
  };
  const stops = [
    tb.bus.subscribe(tripped, tb.machineId, (m) => seen.tripped.push(m)),
    tb.bus.subscribe(alert.safety, tb.machineId, (m) => seen.alerts.push(m)),
    tb.bus.subscribe(state, tb.machineId, (m) => seen.states.push(m.status)),
  ];
  return { seen, stop: () => stops.forEach((s) => s()) };
}

function outputs(plant: SimPlant) {
  return { heaterPowerCut: plant.get("heaterPowerCut"), armHalt: plant.get("armHalt") };
}

const CUT = { heaterPowerCut: true, armHalt: true };
const ENABLED = { heaterPowerCut: false, armHalt: false };

/**
 * Waits until the plant carries `want` on both outputs. A remote monitor sets
 * them with one `plant.set` each, so seeing one output change says nothing yet
 * about the other.
 */
async function waitOutputs(plant: SimPlant, want: typeof CUT, what: string): Promise<void> {
  await waitFor(what, () => {
    const now = outputs(plant);
    return now.heaterPowerCut === want.heaterPowerCut && now.armHalt === want.armHalt
      ? true
      : undefined;
  });
}

async function waitState(safety: RunningActor, want: string): Promise<void> {
  await waitFor(`safety state "${want}"`, () => safety.state() === want ? true : undefined)
    .catch((err) => {
      throw new Error(`${err}; the state is "${safety.state()}"`);
    });
}

/** Waits until the monitor no longer sees any cause active (a poll after a release). */
async function waitInputsClear(tb: TestBus): Promise<void> {
  await waitFor("inputs clear", async () => {
    const s = await statusOf(tb);
    return s.activeInputs.length === 0 ? true : undefined;
  });
}

async function resetOk(tb: TestBus): Promise<SafetyStatus> {
  const r = await call(tb, reset, { performedBy: "tech-1" });
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

/** A fake oven probe: the independent over-temperature sensor reads `tempC`. */
function fakeOven(plant: SimPlant, tempC: number) {
  const probe = {
    tempC,
    reads: 0,
    temperatureC: () => (probe.reads++, probe.tempC),
    heaterPct: () => 0,
    energyWh: () => 0,
  };
  plant.oven = probe;
  return probe;
}

Deno.test("safety monitor on the local plant", async (t) => {
  const tb = await connectTestBus({ speed: SPEED });
  const plant = new SimPlant(tb.clock);
  const events = recordEvents(tb);
  const commandSubjects: string[] = [];
  const stopSpy = tb.raw.subscribe(`fornax.${tb.machineId}.*.cmd.>`, (m) => {
    commandSubjects.push(m.subject);
  });
  let safety = startSafety(testActorContext(tb, config), createLocalSafetyIo(plant));
  try {
    await waitState(safety, "armed");
    assert.deepEqual(outputs(plant), ENABLED);

    await t.step("e-stop cuts both outputs in the same call and latches ESTOP", async () => {
      plant.set("estop", true);
      assert.deepEqual(outputs(plant), CUT);
      assert.equal(safety.state(), "tripped");
      const trip = await waitFor("tripped event", () => events.seen.tripped[0]);
      assert.deepEqual(trip.causes, ["ESTOP"]);
      const a = await waitFor("alert", () => events.seen.alerts[0]);
      assert.equal(a.type, "SAFETY_TRIP");
      assert.equal(a.severity, "CRITICAL");
      assert.equal(a.resolved, false);
      const s = await statusOf(tb);
      assert.equal(s.tripped, true);
      assert.deepEqual(s.causes, ["ESTOP"]);
      assert.deepEqual(s.activeInputs, ["ESTOP"]);
      assert.equal(s.heaterPowerCut, true);
      assert.equal(s.armHalted, true);
    });

    await t.step("reset is refused with CONFLICT while the e-stop is pressed", async () => {
      const r = await call(tb, reset, { performedBy: "tech-1" });
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, "CONFLICT");
      assert.match(!r.ok ? r.error.message : "", /ESTOP/);
      assert.deepEqual(outputs(plant), CUT);
    });

    await t.step("releasing the e-stop does not release the trip", async () => {
      plant.set("estop", false);
      assert.deepEqual(outputs(plant), CUT);
      await waitInputsClear(tb);
      const s = await statusOf(tb);
      assert.equal(s.tripped, true);
      assert.deepEqual(s.causes, ["ESTOP"]);
      assert.deepEqual(outputs(plant), CUT);
    });

    await t.step("reset after release re-enables the outputs and nothing else", async () => {
      const s = await resetOk(tb);
      assert.equal(s.tripped, false);
      assert.deepEqual(s.causes, []);
      assert.equal(s.latchedAt, null);
      assert.deepEqual(outputs(plant), ENABLED);
      assert.equal(safety.state(), "armed");
      const resolved = await waitFor(
        "resolved alert",
        () => events.seen.alerts.find((a) => a.resolved),
      );
      assert.equal(resolved.alertId, events.seen.alerts[0]!.alertId);
      assert.equal(resolved.severity, "INFO");
      // A repeated reset on an armed monitor is harmless.
      assert.equal((await resetOk(tb)).tripped, false);
      // The monitor restarts nothing: the only commands on the bus are ours to it.
      assert.ok(
        commandSubjects.every((s) => s.includes(".safety.cmd.")),
        JSON.stringify(commandSubjects),
      );
    });

    for (
      const [signal, cause] of [["serviceDoorOpen", "SERVICE_DOOR"], ["smoke", "SMOKE"]] as const
    ) {
      await t.step(`${signal} trips with ${cause}, resets after it clears`, async () => {
        const before = events.seen.tripped.length;
        plant.set(signal, true);
        assert.deepEqual(outputs(plant), CUT);
        const trip = await waitFor("tripped", () => events.seen.tripped[before]);
        assert.deepEqual(trip.causes, [cause]);
        const refused = await call(tb, reset, { performedBy: "tech-1" });
        assert.equal(!refused.ok && refused.error.code, "CONFLICT");
        plant.set(signal, false);
        assert.deepEqual(outputs(plant), CUT);
        await waitInputsClear(tb);
        await resetOk(tb);
        assert.deepEqual(outputs(plant), ENABLED);
      });
    }

    await t.step("oven over temperature on the independent sensor trips", async () => {
      const oven = fakeOven(plant, OVEN_OVER_TEMPERATURE_C - 10);
      const before = events.seen.tripped.length;
      // Just below the limit: many polls go by without a trip.
      await waitFor("polls below the limit", () => oven.reads >= 20 ? true : undefined);
      assert.equal(safety.state(), "armed");
      assert.equal(events.seen.tripped.length, before);
      oven.tempC = OVEN_OVER_TEMPERATURE_C + 5;
      const trip = await waitFor("tripped", () => events.seen.tripped[before]);
      assert.deepEqual(trip.causes, ["OVEN_OVER_TEMPERATURE"]);
      assert.deepEqual(outputs(plant), CUT);
      const refused = await call(tb, reset, { performedBy: "tech-1" });
      assert.match(!refused.ok ? refused.error.message : "", /OVEN_OVER_TEMPERATURE/);
      oven.tempC = 200;
      await waitInputsClear(tb);
      await resetOk(tb);
      assert.deepEqual(outputs(plant), ENABLED);
      plant.oven = null;
    });

    await t.step("a second cause while tripped is latched and announced too", async () => {
      const before = events.seen.tripped.length;
      plant.set("estop", true);
      plant.set("smoke", true);
      const second = await waitFor("second tripped", () => events.seen.tripped[before + 1]);
      assert.deepEqual(second.causes, ["ESTOP", "SMOKE"]);
      assert.equal(second.latchedAt, events.seen.tripped[before]!.latchedAt);
      plant.set("estop", false);
      plant.set("smoke", false);
      await waitInputsClear(tb);
      await resetOk(tb);
    });

    await t.step("pickup door halts the arm while open, without a latch", async () => {
      const trips = events.seen.tripped.length;
      plant.set("pickupDoorOpen", true);
      assert.deepEqual(outputs(plant), { heaterPowerCut: false, armHalt: true });
      await waitFor(
        "state with door open",
        () => events.seen.states.find((s) => s.pickupDoorOpen && s.armHalted && !s.tripped),
      );
      plant.set("pickupDoorOpen", false);
      assert.deepEqual(outputs(plant), ENABLED);
      const s = await statusOf(tb);
      assert.equal(s.tripped, false);
      assert.equal(s.pickupDoorOpen, false);
      assert.equal(events.seen.tripped.length, trips);
    });

    await t.step("a released output wire is cut again by the next poll", async () => {
      plant.set("estop", true);
      plant.set("heaterPowerCut", false);
      await waitFor("re-cut", () => plant.get("heaterPowerCut") ? true : undefined);
      plant.set("estop", false);
      await waitInputsClear(tb);
      await resetOk(tb);
    });

    await t.step("a stopped monitor leaves a trip in place; its successor keeps it", async () => {
      plant.set("smoke", true);
      assert.deepEqual(outputs(plant), CUT);
      await safety.stop();
      assert.equal(safety.alive(), false);
      plant.set("smoke", false);
      assert.deepEqual(outputs(plant), CUT);
      safety = startSafety(testActorContext(tb, config), createLocalSafetyIo(plant));
      await waitState(safety, "tripped");
      assert.deepEqual(outputs(plant), CUT);
      await resetOk(tb);
      assert.deepEqual(outputs(plant), ENABLED);
    });

    await t.step("e-stop already pressed at start trips at once", async () => {
      await safety.stop();
      plant.set("estop", true);
      const before = events.seen.tripped.length;
      safety = startSafety(testActorContext(tb, config), createLocalSafetyIo(plant));
      await waitState(safety, "tripped");
      assert.deepEqual(outputs(plant), CUT);
      const trip = await waitFor("tripped", () => events.seen.tripped[before]);
      assert.deepEqual(trip.causes, ["ESTOP"]);
      plant.set("estop", false);
      await waitInputsClear(tb);
      await resetOk(tb);
      assert.deepEqual(outputs(plant), ENABLED);
    });

    await t.step("state is published once a second even without a change", async () => {
      const n = events.seen.states.length;
      await waitFor("periodic state", () => events.seen.states.length >= n + 2 ? true : undefined);
    });
  } finally {
    stopSpy();
    events.stop();
    await safety.stop();
    await tb.close();
  }
});

/** A clock that moves only when the test advances it. */
function manualClock(startMs: number) {
  let nowMs = startMs;
  let seq = 0;
  const timers = new Map<number, { dueMs: number; fn: () => void }>();
  const clock = {
    now: () => nowMs,
    setTimeout: (fn: () => void, ms: number): TimerHandle => {
      timers.set(++seq, { dueMs: nowMs + Math.max(0, ms), fn });
      return seq;
    },
    clearTimeout: (handle: TimerHandle) => void timers.delete(handle as number),
    /** Fires every timer due within `ms`, letting promise chains settle after each. */
    async advance(ms: number) {
      const endMs = nowMs + ms;
      while (true) {
        let next: [number, { dueMs: number; fn: () => void }] | undefined;
        for (const entry of timers) {
          if (entry[1].dueMs <= endMs && (!next || entry[1].dueMs < next[1].dueMs)) next = entry;
        }
        if (!next) break;
        timers.delete(next[0]);
        nowMs = Math.max(nowMs, next[1].dueMs);
        next[1].fn();
        for (let i = 0; i < 10; i++) await Promise.resolve();
      }
      nowMs = endMs;
    },
  };
  return clock;
}

Deno.test("safety monitor: storage danger zone after its grace", async (t) => {
  const tb = await connectTestBus({ speed: SPEED });
  const clock = manualClock(Date.UTC(2025, 0, 1));
  const plant = new SimPlant(clock);
  const storage = { tempC: 4, temperatureC: () => storage.tempC };
  plant.storage = storage;
  const safety = startSafety(testActorContext(tb, config, clock), createLocalSafetyIo(plant));
  const minute = 60_000;
  try {
    await clock.advance(POLL_PERIOD_MS);
    assert.equal(safety.state(), "armed");

    await t.step("warm storage within the restock grace does not trip", async () => {
      storage.tempC = STORAGE_LIMIT_C + 4;
      await clock.advance(STORAGE_GRACE_MS - minute);
      assert.equal(safety.state(), "armed");
      assert.deepEqual(outputs(plant), ENABLED);
    });

    await t.step("cooling below the limit restarts the grace", async () => {
      storage.tempC = STORAGE_LIMIT_C - 1;
      await clock.advance(minute);
      storage.tempC = STORAGE_LIMIT_C + 4;
      await clock.advance(STORAGE_GRACE_MS - minute);
      assert.equal(safety.state(), "armed");
    });

    await t.step("warm for longer than the grace trips STORAGE_DANGER_ZONE", async () => {
      await clock.advance(2 * minute);
      assert.equal(safety.state(), "tripped");
      assert.deepEqual(outputs(plant), CUT);
      const s = await statusOf(tb);
      assert.deepEqual(s.causes, ["STORAGE_DANGER_ZONE"]);
      const refused = await call(tb, reset, { performedBy: "tech-1" });
      assert.match(!refused.ok ? refused.error.message : "", /STORAGE_DANGER_ZONE/);
    });

    await t.step("reset is accepted once storage is cold again", async () => {
      storage.tempC = 3;
      await clock.advance(500);
      await resetOk(tb);
      assert.equal(safety.state(), "armed");
      assert.deepEqual(outputs(plant), ENABLED);
    });
  } finally {
    await safety.stop();
    await tb.close();
  }
});

Deno.test("safety monitor on the remote io over NATS", async (t) => {
  // Two connections for one machine, as if the monitor ran in a process of its own.
  // A slower clock than elsewhere: the first plant.read over NATS must beat the
  // monitor's startup deadline (clock ms) even on a loaded machine.
  const speed = 10;
  const plantSide = await connectTestBus({ speed });
  const safetySide = await connectTestBus({ speed, machineId: plantSide.machineId });
  const plant = new SimPlant(plantSide.clock);
  let stopServer = servePlant(plantSide.bus, plant);
  const events = recordEvents(plantSide);
  const ios: RemoteSafetyIo[] = [];
  const start = () => {
    const io = new RemoteSafetyIo(safetySide.bus, { timeoutMs: 10_000 * speed });
    ios.push(io);
    return startSafety(testActorContext(safetySide, config), io);
  };
  let safety = start();
  const press = async (signal: "estop" | "smoke", value: boolean) => {
    const r = await call(plantSide, plantSet, { signal, value });
    assert.ok(r.ok, JSON.stringify(r));
  };
  try {
    await waitState(safety, "armed");

    await t.step("e-stop over the bus cuts the outputs and latches", async () => {
      await press("estop", true);
      await waitOutputs(plant, CUT, "outputs cut");
      const trip = await waitFor("tripped", () => events.seen.tripped[0]);
      assert.deepEqual(trip.causes, ["ESTOP"]);
      const r = await call(plantSide, reset, { performedBy: "tech-2" });
      assert.equal(!r.ok && r.error.code, "CONFLICT");
    });

    await t.step("release, then reset re-enables the outputs", async () => {
      await press("estop", false);
      await waitInputsClear(plantSide);
      assert.deepEqual(outputs(plant), CUT);
      await resetOk(plantSide);
      await waitOutputs(plant, ENABLED, "outputs enabled");
    });

    await t.step("pickup door interlock over the bus, no latch", async () => {
      plant.set("pickupDoorOpen", true);
      await waitFor("arm halted", () => plant.get("armHalt") || undefined);
      assert.equal(plant.get("heaterPowerCut"), false);
      plant.set("pickupDoorOpen", false);
      await waitFor("arm released", () => !plant.get("armHalt") || undefined);
      assert.equal((await statusOf(plantSide)).tripped, false);
    });

    await t.step("smoke trips; a restarted monitor keeps the trip", async () => {
      await press("smoke", true);
      await waitOutputs(plant, CUT, "outputs cut");
      await safety.stop();
      ios.at(-1)!.close();
      await press("smoke", false);
      safety = start();
      await waitState(safety, "tripped");
      assert.deepEqual(outputs(plant), CUT);
      await resetOk(plantSide);
      await waitOutputs(plant, ENABLED, "outputs enabled");
    });

    await t.step("losing the plant trips the monitor; reset waits for it", async () => {
      const before = events.seen.tripped.length;
      stopServer();
      await plantSide.raw.flush();
      const trip = await waitFor("tripped", () => events.seen.tripped[before]);
      assert.deepEqual(trip.causes, []);
      const a = await waitFor(
        "alert",
        () => events.seen.alerts.find((a) => !a.resolved && /no longer readable/.test(a.message)),
      );
      assert.equal(a.severity, "CRITICAL");
      const refused = await call(plantSide, reset, { performedBy: "tech-2" });
      assert.equal(!refused.ok && refused.error.code, "CONFLICT");
      assert.match(!refused.ok ? refused.error.message : "", /not readable/);
      // Back on the bus, the plant gets the cut the monitor could not send before.
      stopServer = servePlant(plantSide.bus, plant);
      await waitOutputs(plant, CUT, "outputs cut");
      await waitFor("reset accepted", async () => {
        const r = await call(plantSide, reset, { performedBy: "tech-2" });
        return r.ok ? true : undefined;
      });
      await waitOutputs(plant, ENABLED, "outputs enabled");
    });
  } finally {
    events.stop();
    await safety.stop();
    for (const io of ios) io.close();
    stopServer();
    await safetySide.close();
    await plantSide.close();
  }
});
