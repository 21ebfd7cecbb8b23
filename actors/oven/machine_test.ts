/** The oven machine alone, driven event by event: what a bake counts. */
import assert from "node:assert/strict";
import { createActor } from "xstate";
import { ovenMachine } from "./machine.ts";

Deno.test("oven machine: a bake counts only readings taken since its session began", () => {
  const actor = createActor(ovenMachine, { input: { machineId: "m-1", utcOffsetMin: 0 } });
  actor.start();
  try {
    const t0 = Date.UTC(2025, 2, 3, 12);
    const sample = (nowMs: number, temperatureC: number) =>
      actor.send({ type: "SAMPLE", temperatureC, heaterPct: 50, nowMs });
    const session = () => actor.getSnapshot().context.session!;

    // The last reading before the order came was inside the coming 250 °C
    // band (less the sensor's 1 °C error: 241–259 °C); the oven then fell
    // below it unseen (swarm seed 700464).
    sample(t0, 241.5);
    actor.send({
      type: "COOK",
      orderId: "00000000-0000-4000-8000-000000000001",
      pizzaId: "margherita",
      targetC: 250,
      cookTimeMs: 140_000,
      sessionId: "s-1",
      nowMs: t0 + 2_500,
    });
    assert.equal(session().record.status, "HEATING", "a reading from before the session");

    sample(t0 + 5_000, 241.25);
    assert.equal(session().record.status, "COOKING", "the session's first reading in the band");
    assert.equal(session().bakedMs, 0, "the time before that reading is not baking");

    sample(t0 + 10_000, 242);
    assert.equal(session().bakedMs, 5_000);
    sample(t0 + 15_000, 240.5);
    assert.equal(
      session().bakedMs,
      5_000,
      "a reading within the sensor's error of the band's edge does not count",
    );
  } finally {
    actor.stop();
  }
});
