import assert from "node:assert/strict";
import { createVirtualClock } from "../virtual_clock.ts";
import { createSimBus } from "../sim_bus.ts";
import { createSeededRandom } from "../../random/random.ts";
import { SimPlant } from "../../hardware/sim/plant.ts";
import { Incarnation } from "./incarnation.ts";

const enc = new TextEncoder();

Deno.test("incarnation: a power loss drops timers, connections and listeners at once", async (t) => {
  const clock = createVirtualClock(Date.UTC(2025, 0, 1));
  const bus = createSimBus({ clock, random: createSeededRandom(1) });
  const life = new Incarnation(1, clock);

  await t.step("while alive, its clock and bus work", async () => {
    let fired = 0;
    life.clock.setTimeout(() => fired++, 10);
    await clock.runFor(10);
    assert.equal(fired, 1);
  });

  const fired: string[] = [];
  life.clock.setTimeout(() => fired.push("timer"), 1000);
  const conn = life.wrapBus(bus.connect("ctl"));
  conn.subscribe("a.b", () => fired.push("delivery"));
  const responder = bus.connect("other");
  responder.subscribe("svc", (m) => {
    // Answers late, after the power loss.
    clock.setTimeout(() => m.respond?.(enc.encode("late")), 500);
  });
  let settled = false;
  conn.request("svc", enc.encode("q"), 5000).then(
    () => settled = true,
    () => settled = true,
  );
  const plant = new SimPlant(clock);
  const view = life.wrapPlant(plant);
  view.onChange((s) => fired.push(`signal ${s}`));
  const neverSettles = life.gate(new Promise((r) => clock.setTimeout(() => r("x"), 200)));
  let gated = false;
  neverSettles.then(() => gated = true, () => gated = true);

  await clock.runFor(100);
  life.kill();
  assert.equal(life.isAlive, false);
  assert.ok(life.signal.aborted);

  await t.step("nothing of the dead life runs any more", async () => {
    bus.publish("a.b", enc.encode("m"));
    plant.set("estop", true);
    life.clock.setTimeout(() => fired.push("after death"), 1);
    await clock.runFor(10_000);
    assert.deepEqual(fired, []);
    assert.equal(settled, false, "a request of the dead life settled");
    assert.equal(gated, false, "a gated promise settled after death");
  });

  await bus.close();
});

Deno.test("incarnation: a new life on the same world works while the old stays dead", async () => {
  const clock = createVirtualClock(Date.UTC(2025, 0, 1));
  const bus = createSimBus({ clock, random: createSeededRandom(1) });
  const old = new Incarnation(1, clock);
  const seen: string[] = [];
  old.wrapBus(bus.connect("ctl-1")).subscribe("x", () => seen.push("old"));
  old.kill();
  const next = new Incarnation(2, clock);
  next.wrapBus(bus.connect("ctl-2")).subscribe("x", () => seen.push("new"));
  bus.publish("x", enc.encode("1"));
  await clock.runFor(1);
  assert.deepEqual(seen, ["new"]);
  await bus.close();
});
