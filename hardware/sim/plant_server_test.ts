import assert from "node:assert/strict";
import { changed, read, set } from "../../protocol/plant.ts";
import { connectTestBus, waitFor } from "../../testing/nats.ts";
import { SimPlant } from "./plant.ts";
import { servePlant } from "./plant_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("plant server: the simulated plant's panel on the bus", async (t) => {
  const server = await connectTestBus({ speed: 10 });
  const operator = await connectTestBus({ speed: 10, machineId: server.machineId });
  const plant = new SimPlant(server.clock);
  const stop = servePlant(server.bus, plant);
  const seen: { signal: string; value: boolean }[] = [];
  const unsubscribe = operator.bus.subscribe(
    changed,
    operator.machineId,
    (m) => seen.push({ signal: m.signal, value: m.value }),
  );
  await operator.raw.flush();
  const timeoutMs = 100_000;
  try {
    await t.step("plant.set presses the e-stop and answers with a snapshot", async () => {
      const r = await operator.bus.request(set, { signal: "estop", value: true }, { timeoutMs });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.signals.estop, true);
      assert.equal(plant.get("estop"), true);
      await waitFor("changed event", () => seen.find((e) => e.signal === "estop"));
      assert.deepEqual(seen, [{ signal: "estop", value: true }]);
    });

    await t.step("setting a signal to its value publishes nothing", async () => {
      await operator.bus.request(set, { signal: "estop", value: true }, { timeoutMs });
      await operator.bus.request(set, { signal: "smoke", value: true }, { timeoutMs });
      await waitFor("smoke event", () => seen.find((e) => e.signal === "smoke"));
      assert.deepEqual(seen.map((e) => e.signal), ["estop", "smoke"]);
    });

    await t.step("changes made on the plant itself are published too", async () => {
      plant.set("pickupDoorOpen", true);
      const e = await waitFor("door event", () => seen.find((e) => e.signal === "pickupDoorOpen"));
      assert.equal(e.value, true);
    });

    await t.step("the read-only pickupDoorOpen is refused with BAD_REQUEST", async () => {
      const r = await operator.bus.request(set, { signal: "pickupDoorOpen", value: false }, {
        timeoutMs,
      });
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, "BAD_REQUEST");
      assert.match(!r.ok ? r.error.message : "", /pickupDoorOpen/);
      assert.equal(plant.get("pickupDoorOpen"), true);
    });

    await t.step("bad bodies are refused with BAD_REQUEST and change nothing", async () => {
      const before = JSON.stringify(plant.snapshot());
      const bodies = [
        { signal: "nope", value: true },
        { signal: "heaterPowerCut", value: "yes" },
        { signal: "heaterPowerCut" },
      ];
      for (const body of bodies) {
        const raw = await operator.raw.request(
          set.subject(operator.machineId),
          encoder.encode(
            JSON.stringify({ id: "x", machineId: operator.machineId, ts: 1, ...body }),
          ),
          timeoutMs,
        );
        const reply = JSON.parse(decoder.decode(raw));
        assert.equal(reply.ok, false, JSON.stringify(body));
        assert.equal(reply.error.code, "BAD_REQUEST");
      }
      const garbage = await operator.raw.request(
        set.subject(operator.machineId),
        encoder.encode("{not json"),
        timeoutMs,
      );
      assert.equal(JSON.parse(decoder.decode(garbage)).error.code, "BAD_REQUEST");
      assert.equal(JSON.stringify(plant.snapshot()), before);
    });

    await t.step("plant.read reports every sensor, probes included", async () => {
      plant.oven = { temperatureC: () => 231, heaterPct: () => 40, energyWh: () => 12 };
      plant.storage = { temperatureC: () => 5 };
      const r = await operator.bus.request(read, {}, { timeoutMs });
      assert.ok(r.ok, JSON.stringify(r));
      assert.equal(r.value.ovenTempC, 231);
      assert.equal(r.value.heaterPct, 40);
      assert.equal(r.value.ovenEnergyWh, 12);
      assert.equal(r.value.storageTempC, 5);
      assert.equal(r.value.signals.smoke, true);
      assert.equal(r.value.signals.heaterPowerCut, false);
    });

    await t.step("after stop the panel is gone and changes are not published", async () => {
      stop();
      // The unsubscriptions must reach the server before the request does.
      await server.raw.flush();
      const count = seen.length;
      plant.set("serviceDoorOpen", true);
      const r = await operator.bus.request(read, {}, { timeoutMs });
      assert.equal(!r.ok && r.error.code, "UNAVAILABLE");
      await operator.raw.flush();
      assert.equal(seen.length, count);
    });
  } finally {
    stop();
    unsubscribe();
    await operator.close();
    await server.close();
  }
});
