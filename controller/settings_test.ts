import assert from "node:assert/strict";
import { readSettings, SettingsError } from "./settings.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("settings: defaults work out of the box", () => {
  const s = readSettings([], env({}));
  assert.equal(s.natsUrl, "nats://127.0.0.1:4222");
  assert.equal(s.machineId, "m-001");
  assert.equal(s.port, 8080);
  assert.equal(s.speed, 1);
  assert.equal(s.techToken, undefined);
  assert.ok(s.only.includes("safety") && s.only.includes("plant"));
});

Deno.test("settings: flags and environment are read", () => {
  const s = readSettings(
    ["--speed", "1000", "--only", "safety"],
    env({ MACHINE_ID: "m-042", PORT: "9000" }),
  );
  assert.equal(s.speed, 1000);
  assert.deepEqual(s.only, ["safety"]);
  assert.equal(s.machineId, "m-042");
  assert.equal(s.port, 9000);
});

Deno.test("settings: a bad value is refused naming it", async (t) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [["--speed", "fast"], {}, /--speed/],
    [["--speed", "-2"], {}, /--speed/],
    [["--only", "toaster"], {}, /--only "toaster"/],
    [["--only", "oven"], {}, /need "plant"/],
    [[], { PORT: "eighty" }, /PORT/],
    [[], { MACHINE_ID: "m 1" }, /MACHINE_ID/],
    [[], { NATS_URL: "http://x" }, /NATS_URL/],
    [[], { TECH_TOKEN: "short" }, /TECH_TOKEN/],
    [["--colour"], {}, /colour/],
  ];
  for (const [args, vars, pattern] of cases) {
    await t.step(`${args.join(" ")} ${JSON.stringify(vars)}`, () => {
      assert.throws(
        () => readSettings(args, env(vars)),
        (err: unknown) => err instanceof SettingsError && pattern.test(err.message),
      );
    });
  }
});
