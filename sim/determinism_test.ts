/**
 * Same scenario and seed, same event log to the byte: twice in one process,
 * with wall time and ambient randomness tampered with, and in two separate
 * processes through the command line.
 */
import assert from "node:assert/strict";
import { parseScenario } from "./scenario.ts";
import { explain, runQuietly } from "./test_helpers.ts";

/** A short, busy day with a partition and a power loss mid-lunch. */
const scenario = {
  name: "determinism",
  seed: 11,
  start: "2025-03-03T12:00:00Z",
  durationH: 0.3,
  drainMaxMin: 60,
  machine: { storageSlots: 12, fullPerSlot: 2 },
  customers: { baseRatePerH: 10, noShowShare: 0, mistypeShare: 0.3 },
  faults: [
    { type: "natsPartition", atMin: 3, component: "oven", forMin: 1 },
    { type: "powerLoss", atMin: 8, restartAfterS: 30 },
  ],
};

Deno.test("determinism: the same seed gives the same log, in one process", async (t) => {
  const first = await runQuietly(parseScenario(scenario));
  assert.equal(first.summary.violations.length, 0, explain(first.summary));
  assert.equal(first.summary.boots, 2);
  assert.ok(first.summary.orders >= 2, `orders ${first.summary.orders}`);

  await t.step("a second run", async () => {
    const again = await runQuietly(parseScenario(scenario));
    assert.equal(again.summary.logSha256, first.summary.logSha256);
    assert.equal(again.summary.logLines, first.summary.logLines);
  });

  await t.step("with wall time and Math.random tampered with", async () => {
    const realNow = Date.now;
    const realRandom = Math.random;
    let n = 0;
    Date.now = () => 4_000_000_000_000 + n++ * 7919;
    Math.random = () => (n++ * 0.6180339887) % 1;
    try {
      const tampered = await runQuietly(parseScenario(scenario));
      assert.equal(tampered.summary.logSha256, first.summary.logSha256);
    } finally {
      Date.now = realNow;
      Math.random = realRandom;
    }
  });

  await t.step("another seed gives another log", async () => {
    const other = await runQuietly(parseScenario(scenario), { seed: 12 });
    assert.notEqual(other.summary.logSha256, first.summary.logSha256);
  });
});

Deno.test("determinism: two processes print the same hash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-sim-" });
  try {
    const file = `${dir}/determinism.json`;
    await Deno.writeTextFile(file, JSON.stringify(scenario));
    const cli = new URL("./cli.ts", import.meta.url).pathname;
    const run = (log: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "run", file, "--seed", "11", "--json", "--log", log],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const [a, b] = await Promise.all([run(`${dir}/a.jsonl`), run(`${dir}/b.jsonl`)]);
    const decode = (o: Deno.CommandOutput) => new TextDecoder().decode(o.stdout);
    assert.equal(a.code, 0, new TextDecoder().decode(a.stderr) + decode(a));
    assert.equal(b.code, 0, new TextDecoder().decode(b.stderr) + decode(b));
    const sa = JSON.parse(decode(a));
    const sb = JSON.parse(decode(b));
    for (const key of ["logSha256", "simulatedMs", "wallMs", "orders", "dispensed", "refunded"]) {
      assert.ok(key in sa, `--json lacks "${key}"`);
    }
    assert.deepEqual(sa.violations, []);
    assert.equal(sa.logSha256, sb.logSha256);
    const bytes = await Deno.readFile(`${dir}/a.jsonl`);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    const hex = [...digest].map((x) => x.toString(16).padStart(2, "0")).join("");
    assert.equal(hex, sa.logSha256, "the printed hash is the file's");
    assert.deepEqual(bytes, await Deno.readFile(`${dir}/b.jsonl`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
