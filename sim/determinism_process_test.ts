/** Same scenario and seed, same log: in two processes through the command line. */
import assert from "node:assert/strict";
import { determinismScenario as scenario } from "./test_helpers.ts";

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
