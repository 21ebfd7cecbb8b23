import assert from "node:assert/strict";
import { connectTestBus, waitFor } from "../testing/nats.ts";
import { defineCommand, defineEvent, fail, ok } from "../protocol/define.ts";
import { z } from "zod";

const echo = defineCommand(
  "order",
  "echo_test",
  { n: z.number().int() },
  z.object({ twice: z.number() }),
);
const ping = defineEvent("order", "ping_test", { n: z.number() });

Deno.test("typed bus: request/reply, validation at the door, events", async (t) => {
  const tb = await connectTestBus();
  try {
    const seen: number[] = [];
    tb.bus.serve(
      echo,
      (req) => req.n < 0 ? fail("CONFLICT", "negative") : ok({ twice: req.n * 2 }),
    );
    tb.bus.subscribe(ping, tb.machineId, (msg) => seen.push(msg.n));

    await t.step("a valid request gets its reply", async () => {
      assert.deepEqual(await tb.bus.request(echo, { n: 21 }), { ok: true, value: { twice: 42 } });
    });
    await t.step("a handler's error comes back as an error reply", async () => {
      const r = await tb.bus.request(echo, { n: -1 });
      assert.deepEqual(r, { ok: false, error: { code: "CONFLICT", message: "negative" } });
    });
    await t.step("a malformed request gets BAD_REQUEST naming the field", async () => {
      const raw = await tb.raw.request(
        echo.subject(tb.machineId),
        new TextEncoder().encode(
          JSON.stringify({ id: "x", machineId: tb.machineId, ts: 1, n: "a" }),
        ),
        1000,
      );
      const reply = JSON.parse(new TextDecoder().decode(raw));
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "BAD_REQUEST");
      assert.match(reply.error.message, /^n: /);
      assert.equal(tb.bus.stats.badRequests, 1);
    });
    await t.step("nobody listening is UNAVAILABLE, not a throw", async () => {
      const r = await tb.bus.request(echo, { n: 1 }, { machineId: "nobody-here" });
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.error.code, "UNAVAILABLE");
    });
    await t.step("events arrive validated; garbage is counted and dropped", async () => {
      tb.raw.publish(ping.subject(tb.machineId), new TextEncoder().encode("{nope"));
      tb.bus.publish(ping, { n: 7 });
      await waitFor("ping", () => seen.length === 1 ? true : undefined);
      assert.deepEqual(seen, [7]);
      assert.equal(tb.bus.stats.badEvents, 1);
    });
  } finally {
    await tb.close();
  }
});
