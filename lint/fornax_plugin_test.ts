import assert from "node:assert/strict";
import plugin from "./fornax_plugin.ts";

const lint = (file: string, source: string) => Deno.lint.runPlugin(plugin, file, source);

Deno.test("lint: wall time and randomness are refused in actors, hardware, protocol and sim", () => {
  const source = `
    const a = Date.now();
    const b = Math.random();
    const c = crypto.randomUUID();
    const d = new Date();
    setTimeout(() => {}, 1);
    setInterval(() => {}, 1);
    const e = performance.now();
  `;
  const found = lint("/repo/actors/oven/machine.ts", source);
  assert.equal(found.length, 7, JSON.stringify(found.map((f) => f.message)));
});

Deno.test("lint: the clock, tests and explicit dates are allowed", () => {
  assert.equal(lint("/repo/clock/clock.ts", "Date.now(); setTimeout(() => {}, 1);").length, 0);
  assert.equal(lint("/repo/actors/oven/oven_test.ts", "Date.now();").length, 0);
  assert.equal(
    lint("/repo/actors/oven/machine.ts", "new Date(0); clock.setTimeout(f, 1);").length,
    0,
  );
});
