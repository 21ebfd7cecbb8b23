import assert from "node:assert/strict";
import { createRealClock, sleep } from "../../clock/clock.ts";
import { waitFor } from "../../testing/nats.ts";
import { ArmStoppedError } from "../arm.ts";
import { createSimArm } from "./arm.ts";
import { SimPlant } from "./plant.ts";

function setup(options: Parameters<typeof createSimArm>[1] = {}) {
  const clock = createRealClock({ speed: 1000 });
  const plant = new SimPlant(clock);
  const sim = createSimArm(plant, options);
  return { clock, plant, sim, driver: sim.driver };
}

Deno.test("sim arm: carries a pizza from storage to the pickup area", async () => {
  const { sim, driver } = setup();
  try {
    assert.equal(driver.position(), "HOME");
    assert.equal(driver.travelTimeMs("STORAGE", "OVEN"), 4_000);
    assert.equal(driver.travelTimeMs("PICKUP", "OVEN"), 5_000);
    assert.equal(driver.travelTimeMs("OVEN", "OVEN"), 0);
    const seen: number[] = [];
    driver.subscribe((s) => seen.push(s.pizzasInPickup));
    await driver.moveTo("STORAGE");
    assert.equal(driver.position(), "STORAGE");
    assert.equal(sim.holding(), true);
    await driver.moveTo("OVEN");
    await driver.moveTo("PICKUP");
    assert.equal(driver.position(), "PICKUP");
    assert.equal(sim.holding(), false);
    assert.equal(driver.read().pizzasInPickup, 1);
    assert.deepEqual(seen, [1]);
  } finally {
    sim.dispose();
  }
});

Deno.test("sim arm: the door drives the plant and the customer takes the pizza", async (t) => {
  const { sim, driver, plant } = setup({ pizzasInPickup: 1 });
  try {
    await t.step(
      "door open sets pickupDoorOpen, the customer empties the pickup area",
      async () => {
        await driver.setDoor(true);
        assert.equal(plant.get("pickupDoorOpen"), true);
        assert.equal(driver.read().doorOpen, true);
        await waitFor("pizza taken", () => driver.read().pizzasInPickup === 0 ? true : undefined);
        await driver.setDoor(false);
        assert.equal(plant.get("pickupDoorOpen"), false);
      },
    );
  } finally {
    sim.dispose();
  }
});

Deno.test("sim arm: an absent customer leaves the pizza until they come", async () => {
  const { sim, driver, plant, clock } = setup({ pizzasInPickup: 1 });
  try {
    plant.set("customerAbsent", true);
    await driver.setDoor(true);
    await sleep(clock, 20_000);
    assert.equal(driver.read().pizzasInPickup, 1);
    plant.set("customerAbsent", false);
    await waitFor("pizza taken", () => driver.read().pizzasInPickup === 0 ? true : undefined);
    await driver.setDoor(false);
  } finally {
    sim.dispose();
  }
});

Deno.test("sim arm: the halt output stops a move where it is and refuses new ones", async () => {
  const { sim, driver, plant } = setup({ travelScale: 100 });
  try {
    const move = driver.moveTo("PICKUP");
    plant.set("armHalt", true);
    await assert.rejects(move, (err) => err instanceof ArmStoppedError && err.reason === "halted");
    assert.equal(driver.position(), null);
    assert.equal(driver.read().halted, true);
    await assert.rejects(driver.moveTo("HOME"), ArmStoppedError);
    plant.set("armHalt", false);
    await driver.moveTo("HOME");
    assert.equal(driver.position(), "HOME");
  } finally {
    sim.dispose();
  }
});

Deno.test("sim arm: a jam holds the move until it is cleared; stop ends it", async () => {
  const { sim, driver, plant, clock } = setup();
  try {
    plant.set("armJam", true);
    assert.equal(driver.read().jammed, true);
    let arrived = false;
    const move = driver.moveTo("OVEN").then(() => arrived = true);
    await sleep(clock, 30_000);
    assert.equal(arrived, false);
    plant.set("armJam", false);
    await move;
    assert.equal(driver.position(), "OVEN");

    plant.set("armJam", true);
    const stuck = driver.moveTo("STORAGE");
    driver.stop();
    await assert.rejects(
      stuck,
      (err) => err instanceof ArmStoppedError && err.reason === "stopped",
    );
    assert.equal(driver.position(), null);
  } finally {
    sim.dispose();
  }
});

Deno.test("sim arm: an aborted move stops the arm", async () => {
  const { sim, driver } = setup({ travelScale: 100 });
  try {
    const ac = new AbortController();
    const move = driver.moveTo("STORAGE", ac.signal);
    ac.abort();
    await assert.rejects(move, (err) => err instanceof ArmStoppedError && err.reason === "aborted");
    assert.equal(driver.position(), null);
  } finally {
    sim.dispose();
  }
});
