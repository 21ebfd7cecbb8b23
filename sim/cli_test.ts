/** The command line: exit 2 naming a bad flag or file, 1 naming a broken invariant. */
import assert from "node:assert/strict";
import { main } from "./cli.ts";

/** Runs the CLI in-process; returns its status and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(" "));
  console.error = (...a: unknown[]) => void err.push(a.join(" "));
  try {
    const code = await main(args);
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
  }
}

const tiny = {
  name: "cli-tiny",
  seed: 3,
  start: "2025-03-03T12:00:00Z",
  durationH: 0.1,
  // Eight pizzas of about five minutes each, one pickup bay: the drain needs room.
  drainMaxMin: 45,
  machine: { storageSlots: 8 },
  customers: { baseRatePerH: 12, noShowShare: 0 },
};

Deno.test("cli: bad flags and files exit 2 naming them", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-cli-" });
  try {
    const good = `${dir}/tiny.json`;
    await Deno.writeTextFile(good, JSON.stringify(tiny));
    const bad = `${dir}/bad.json`;
    await Deno.writeTextFile(bad, JSON.stringify({ ...tiny, customers: { baseRatePerH: -1 } }));
    const cases: [string[], RegExp][] = [
      [["run"], /one scenario FILE/],
      [["run", good, "--seed", "abc"], /Bad --seed "abc"/],
      [["run", good, "--mode", "chaos"], /Bad --mode "chaos"/],
      [["run", good, "--bogus"], /bogus/],
      [["run", good, "--speed", "10"], /--speed: only with --realtime/],
      [["run", `${dir}/missing.json`], /missing\.json: cannot read/],
      [["run", bad], /bad\.json: invalid scenario\n\s+customers\.baseRatePerH/],
      [["run", "swarm"], /needs --seed/],
      [["swarm"], /needs --runs/],
      [["swarm", "--runs", "0"], /Bad --runs "0"/],
      [["fly"], /Unknown command "fly"/],
    ];
    for (const [args, message] of cases) {
      await t.step(args.join(" ").replace(dir, "…"), async () => {
        const r = await cli(...args);
        assert.equal(r.code, 2, r.out + r.err);
        assert.match(r.err, message);
      });
    }
    await t.step("check accepts a good file", async () => {
      const r = await cli("check", good);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /tiny\.json: ok/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a run prints JSON, writes its log and report; a broken invariant exits 1", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-cli-" });
  try {
    await t.step("a good run", async () => {
      const file = `${dir}/tiny.json`;
      await Deno.writeTextFile(file, JSON.stringify(tiny));
      const log = `${dir}/out.jsonl`;
      const report = `${dir}/out.html`;
      const r = await cli("run", file, "--json", "--log", log, "--report", report);
      assert.equal(r.code, 0, r.out + r.err);
      const s = JSON.parse(r.out);
      for (const key of ["logSha256", "simulatedMs", "wallMs", "orders", "dispensed", "refunded"]) {
        assert.ok(key in s, `no "${key}" in ${r.out}`);
      }
      assert.deepEqual(s.violations, []);
      const lines = (await Deno.readTextFile(log)).trimEnd().split("\n");
      assert.equal(lines.length, s.logLines);
      const first = JSON.parse(lines[0]!);
      assert.equal(first.e, "run.start");
      assert.ok(lines.some((l) => l.includes('"s":"fornax.sim-001.order.cmd.create"')));
      const html = await Deno.readTextFile(report);
      assert.match(html, /^<!doctype html>/);
      assert.match(html, /<svg[^>]*aria-label="Oven temperature"/);
      assert.match(html, /<svg[^>]*aria-label="Orders through their statuses"/);
      assert.match(html, /<svg[^>]*aria-label="Stock over time"/);
      assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//, "external asset");
      assert.doesNotMatch(html, /<script/);
    });
    await t.step("a run that breaks an invariant names it and its replay", async () => {
      const file = `${dir}/stuck.json`;
      // The e-stop is released long after the drain gives up: the machine never recovers.
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          ...tiny,
          drainMaxMin: 5,
          faults: [{ type: "estop", atMin: 1, releaseAfterMin: 600 }],
        }),
      );
      const r = await cli("run", file, "--no-log", "--seed", "4");
      assert.equal(r.code, 1, r.out + r.err);
      assert.match(r.out, /VIOLATED +[a-z-]+ at 2025-03-03T/);
      assert.match(r.out, new RegExp(`replay +deno task sim run ${file} --seed 4`));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: the idempotence workload resends and duplicates, and nothing happens twice", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-cli-" });
  try {
    const file = `${dir}/tiny.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ ...tiny, customers: { ...tiny.customers, baseRatePerH: 24 } }),
    );
    const log = `${dir}/idem.jsonl`;
    const r = await cli("run", file, "--idempotence", "--json", "--log", log);
    assert.equal(r.code, 0, r.out + r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.idempotence, true);
    assert.deepEqual(s.violations, []);
    assert.match(s.replay, /--idempotence/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
