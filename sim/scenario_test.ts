import assert from "node:assert/strict";
import { healOf, loadScenario, parseScenario, ScenarioError, windowOf } from "./scenario.ts";

const base = {
  name: "t",
  start: "2025-03-03T06:00:00Z",
  durationH: 2,
};

function refusal(value: unknown, where = "file.json"): string {
  try {
    parseScenario(value, where);
  } catch (err) {
    assert.ok(err instanceof ScenarioError, String(err));
    return err.message;
  }
  assert.fail("the scenario was accepted");
}

Deno.test("scenario: defaults, stock and fault times resolve", () => {
  const r = parseScenario({
    ...base,
    machine: { storageSlots: 8, fullPerSlot: 2, fullShelfLifeH: 10 },
    faults: [
      { type: "estop", atMin: 30 },
      { type: "powerLoss", at: "07:15", restartAfterS: 20 },
      { type: "cardReaderOffline", at: "d+1 06:00", forMin: 5 },
    ],
  });
  assert.equal(r.startMs, Date.UTC(2025, 2, 3, 6));
  assert.equal(r.durationMs, 2 * 3_600_000);
  assert.equal(r.stock.length, 8);
  assert.equal(r.stock[0]!.quantity, 2);
  assert.equal(r.stock[0]!.expiresAt, r.startMs + 10 * 3_600_000);
  assert.deepEqual(r.faults.map((f) => [f.type, f.atMs]), [
    ["estop", 30 * 60_000],
    ["powerLoss", 75 * 60_000],
    ["cardReaderOffline", 24 * 3_600_000],
  ]);
  assert.equal(healOf(r.faults[0]!), 5 * 60_000);
  assert.equal(healOf(r.faults[1]!), 20_000);
  assert.equal(r.scenario.customers.baseRatePerH, 8);
  assert.equal(r.config.menu.length, 4);
});

Deno.test("scenario: a bad field is named with the file", async (t) => {
  await t.step("wrong type", () => {
    const msg = refusal({ ...base, durationH: "two" });
    assert.match(msg, /^file\.json: invalid scenario/);
    assert.match(msg, /durationH: /);
  });
  await t.step("unknown fault type", () => {
    assert.match(refusal({ ...base, faults: [{ type: "meteor", atMin: 1 }] }), /faults\.0\.type/);
  });
  await t.step("a pizza not on the menu", () => {
    const msg = refusal({
      ...base,
      machine: { stock: [{ pizzaId: "hawaii", storageSlot: 0, expiresInH: 5 }] },
    });
    assert.match(msg, /machine\.stock\.0\.pizzaId: "hawaii" is not on the menu/);
  });
  await t.step("a fault before the start", () => {
    assert.match(refusal({ ...base, faults: [{ type: "estop", at: "05:00" }] }), /faults\.0\.at/);
  });
  await t.step("a fault that never heals in liveness mode", () => {
    const msg = refusal({ ...base, faults: [{ type: "estop", atMin: 1, releaseAfterMin: null }] });
    assert.match(msg, /faults\.0: .*only allowed in safety mode/);
    parseScenario({
      ...base,
      mode: "safety",
      faults: [{ type: "estop", atMin: 1, releaseAfterMin: null }],
    });
  });
  await t.step("a missing time", () => {
    assert.match(
      refusal({ ...base, faults: [{ type: "smoke" }] }),
      /faults\.0: needs "atMin" or "at"/,
    );
  });
});

Deno.test("scenario: files that cannot be read or parsed are named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(loadScenario(`${dir}/missing.json`), /missing\.json: cannot read/);
    await Deno.writeTextFile(`${dir}/bad.json`, "{ nope");
    await assert.rejects(loadScenario(`${dir}/bad.json`), /bad\.json: not valid JSON/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scenario: every shipped scenario is valid", async () => {
  const names: string[] = [];
  for await (const e of Deno.readDir(new URL("./scenarios", import.meta.url))) {
    if (e.isFile && e.name.endsWith(".json")) names.push(e.name);
  }
  assert.ok(names.length >= 8, `only ${names.length} scenarios`);
  for (const name of names) {
    await loadScenario(new URL(`./scenarios/${name}`, import.meta.url).pathname);
  }
});

Deno.test("scenario: a window keeps the faults inside it", () => {
  const r = parseScenario({
    ...base,
    durationH: 6,
    faults: [{ type: "estop", atMin: 30 }, { type: "smoke", atMin: 150 }],
  });
  const w = windowOf(r, 120, 1);
  assert.equal(w.startMs, r.startMs + 120 * 60_000);
  assert.equal(w.durationMs, 3_600_000);
  assert.deepEqual(w.faults.map((f) => [f.type, f.atMs]), [["smoke", 30 * 60_000]]);
});
