import assert from "node:assert/strict";
import { every } from "../clock/clock.ts";
import { BusClosedError, BusTimeoutError, NoRespondersError } from "../bus/bus.ts";
import { createSeededRandom } from "../random/random.ts";
import {
  type BusFaultOptions,
  type BusTapEvent,
  createSimBus,
  type SimBus,
  subjectMatches,
} from "./sim_bus.ts";
import { createVirtualClock, RunawayError, type VirtualClock } from "./virtual_clock.ts";

const t0 = Date.UTC(2025, 0, 1);
const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (b: Uint8Array) => dec.decode(b);

function world(faults: BusFaultOptions = {}, seed = 1): { clock: VirtualClock; bus: SimBus } {
  const clock = createVirtualClock(t0);
  return { clock, bus: createSimBus({ clock, random: createSeededRandom(seed), faults }) };
}

/** Settles a promise while the virtual clock runs for `ms`. */
async function outcome<T>(clock: VirtualClock, promise: Promise<T>, ms: number) {
  let result: { value: T } | { error: unknown } | undefined;
  promise.then((value) => result = { value }, (error) => result = { error });
  await clock.runFor(ms);
  assert.ok(result, "promise did not settle");
  return result;
}

const line = (e: BusTapEvent) =>
  [
    e.type,
    e.timeMs - t0,
    e.connection,
    e.subject,
    e.reply ?? "",
    e.reason ?? "",
    e.duplicate ? "dup" : "",
    text(e.data),
  ].join(" ");

/** A busy little world: events, a queue group, requests; returns its tap trace. */
async function scenario(seed: number): Promise<string[]> {
  const { clock, bus } = world({
    dropProbability: 0.1,
    duplicateProbability: 0.1,
    delay: { minMs: 0, maxMs: 40 },
  }, seed);
  const trace: string[] = [];
  bus.tap((e) => trace.push(line(e)));
  const oven = bus.connect("oven");
  const order = bus.connect("order");
  const workers = [bus.connect("w1"), bus.connect("w2"), bus.connect("w3")];
  let n = 0;
  oven.subscribe("fornax.m1.oven.cmd.>", (m) => m.respond?.(bytes(`ok ${text(m.data)}`)));
  order.subscribe("fornax.*.*.evt.>", () => {});
  for (const w of workers) w.subscribe("fornax.m1.oven.evt.temp", () => {}, { queue: "ingest" });
  const stopTemp = every(
    clock,
    100,
    () => oven.publish("fornax.m1.oven.evt.temp", bytes(`${n++}`)),
  );
  const stopCmd = every(clock, 250, () => {
    order.request("fornax.m1.oven.cmd.heat", bytes(`${n}`), 60).then(
      (r) => trace.push(`reply ${clock.now() - t0} ${text(r)}`),
      (e: Error) => trace.push(`error ${clock.now() - t0} ${e.name}`),
    );
  });
  await clock.runFor(10_000);
  stopTemp();
  stopCmd();
  await clock.runFor(1000);
  await bus.close();
  return trace;
}

Deno.test("sim bus: determinism", async (t) => {
  await t.step("the same seed gives the same trace, byte for byte", async () => {
    const a = await scenario(1);
    const b = await scenario(1);
    assert.ok(a.length > 500, `trace too short: ${a.length}`);
    assert.ok(a.some((l) => l.startsWith("drop ")) && a.some((l) => l.includes(" dup ")));
    assert.ok(a.some((l) => l.startsWith("error ")) && a.some((l) => l.startsWith("reply ")));
    assert.deepEqual(b, a);
  });

  await t.step("another seed gives another trace", async () => {
    assert.notDeepEqual(await scenario(2), await scenario(1));
  });

  await t.step("a queue group's member follows the seed, and all members get work", async () => {
    const split = async (seed: number) => {
      const { clock, bus } = world({}, seed);
      const counts = [0, 0, 0];
      counts.forEach((_, i) => bus.connect().subscribe("q", () => counts[i]!++, { queue: "g" }));
      for (let i = 0; i < 300; i++) bus.publish("q", bytes(""));
      await clock.runFor(0);
      return counts;
    };
    const a = await split(3);
    assert.deepEqual(await split(3), a);
    assert.equal(a[0]! + a[1]! + a[2]!, 300);
    assert.ok(a.every((c) => c > 50), `uneven split ${a}`);
  });
});

Deno.test("sim bus: delivery", async (t) => {
  await t.step("delivery is never synchronous", async () => {
    const { clock, bus } = world();
    const seen: string[] = [];
    bus.subscribe("a.b", (m) => {
      seen.push(text(m.data));
      if (m.data.length === 1) bus.publish("a.b", bytes("re-entrant"));
      seen.push("handler returned");
    });
    bus.publish("a.b", bytes("x"));
    assert.deepEqual(seen, []);
    await clock.runFor(0);
    assert.deepEqual(seen, ["x", "handler returned", "re-entrant", "handler returned"]);
    assert.equal(clock.now(), t0);
  });

  await t.step("every message is tapped with subject, bytes and virtual time", async () => {
    const { clock, bus } = world();
    const events: BusTapEvent[] = [];
    const untap = bus.tap((e) => events.push(e));
    const other = bus.connect("svc");
    other.subscribe("svc.echo", (m) => m.respond?.(m.data));
    await clock.runFor(500);
    const r = await outcome(clock, bus.request("svc.echo", bytes("hi"), 1000), 0);
    assert.deepEqual("value" in r && text(r.value), "hi");
    assert.deepEqual(events.map(line), [
      "send 500 main svc.echo _INBOX.main.0   hi",
      "deliver 500 svc svc.echo    hi",
      "send 500 svc _INBOX.main.0    hi",
      "deliver 500 main _INBOX.main.0    hi",
    ]);
    untap();
    bus.publish("svc.none", bytes(""));
    assert.equal(events.length, 4);
  });

  await t.step("published bytes are copied when sent", async () => {
    const { clock, bus } = world();
    const got: string[] = [];
    bus.subscribe("c", (m) => got.push(text(m.data)));
    const data = bytes("abc");
    bus.publish("c", data);
    data[0] = 0x7a;
    await clock.runFor(0);
    assert.deepEqual(got, ["abc"]);
  });

  await t.step("a late second reply is ignored and tapped as late", async () => {
    const { clock, bus } = world();
    const drops: string[] = [];
    bus.tap((e) => e.type === "drop" && drops.push(`${e.reason} ${text(e.data)}`));
    const a = bus.connect();
    const b = bus.connect();
    a.subscribe("svc", (m) => m.respond?.(bytes("a")));
    b.subscribe("svc", (m) => m.respond?.(bytes("b")));
    const r = await outcome(clock, bus.request("svc", bytes(""), 100), 0);
    assert.equal("value" in r && text(r.value), "a");
    assert.deepEqual(drops, ["late b"]);
  });

  await t.step("no responders comes back on the clock, not synchronously", async () => {
    const { clock, bus } = world();
    let settled = false;
    const p = bus.request("nobody", bytes(""), 100).finally(() => settled = true);
    await Promise.resolve();
    assert.equal(settled, false);
    const r = await outcome(clock, p, 0);
    assert.ok("error" in r && r.error instanceof NoRespondersError);
  });

  await t.step("closing rejects pending requests and refuses new work", async () => {
    const { clock, bus } = world();
    const svc = bus.connect("svc");
    svc.subscribe("slow", () => {});
    const c = bus.connect("client");
    const pending = outcome(clock, c.request("slow", bytes(""), 1000), 10);
    await c.close();
    const r = await pending;
    assert.ok("error" in r && r.error instanceof BusClosedError);
    assert.throws(() => c.publish("x", bytes("")), BusClosedError);
    await assert.rejects(c.request("slow", bytes(""), 10), BusClosedError);
    await bus.close();
    assert.throws(() => svc.subscribe("x", () => {}), BusClosedError);
    assert.throws(() => bus.connect(), BusClosedError);
  });

  await t.step("bad subjects and options are refused", () => {
    const { bus } = world();
    for (const s of ["", "a..b", "a.*", "a.>", "a b", ".a"]) {
      assert.throws(() => bus.publish(s, bytes("")), TypeError, s);
    }
    for (const p of ["", "a.>.b", "a*", "a.b>", "a..b"]) {
      assert.throws(() => bus.subscribe(p, () => {}), TypeError, p);
    }
    assert.throws(() => bus.faults.set({ dropProbability: 2 }), RangeError);
    assert.throws(() => bus.faults.set({ delay: { minMs: 5, maxMs: 1 } }), RangeError);
    assert.throws(() => bus.faults.partition("a.>.b"), TypeError);
  });

  await t.step("subject matching follows NATS rules", () => {
    const cases: [string, string, boolean][] = [
      ["a.b", "a.b", true],
      ["a.b", "a.b.c", false],
      ["a.*", "a.b", true],
      ["a.*", "a", false],
      ["a.*", "a.b.c", false],
      ["a.>", "a.b.c", true],
      ["a.>", "a", false],
      [">", "a", true],
      ["*.b.>", "x.b.c.d", true],
      ["*.b.>", "x.c.c.d", false],
      ["fornax.*.*.evt.>", "fornax.m1.oven.evt.temp", true],
      ["fornax.*.*.evt.>", "fornax.m1.oven.cmd.heat", false],
    ];
    for (const [pattern, subject, want] of cases) {
      assert.equal(subjectMatches(pattern, subject), want, `${pattern} vs ${subject}`);
    }
  });
});

Deno.test("sim bus: fault injection", async (t) => {
  await t.step("drop probability 1 loses everything; requests time out", async () => {
    const { clock, bus } = world({ dropProbability: 1 });
    const reasons: string[] = [];
    bus.tap((e) => e.type === "drop" && reasons.push(e.reason!));
    let got = 0;
    bus.subscribe("x", (m) => {
      got++;
      m.respond?.(bytes(""));
    });
    for (let i = 0; i < 10; i++) bus.publish("x", bytes(""));
    const r = await outcome(clock, bus.request("x", bytes(""), 100), 100);
    assert.ok("error" in r && r.error instanceof BusTimeoutError);
    assert.equal(got, 0);
    assert.deepEqual(reasons, Array(11).fill("fault"));
  });

  await t.step("drop probability 0.5 loses about half", async () => {
    const { clock, bus } = world({ dropProbability: 0.5 });
    let got = 0;
    bus.subscribe("x", () => got++);
    for (let i = 0; i < 1000; i++) bus.publish("x", bytes(""));
    await clock.runFor(0);
    assert.ok(got > 400 && got < 600, `got ${got}`);
  });

  await t.step("duplicates arrive right after their original, in order", async () => {
    const { clock, bus } = world({ duplicateProbability: 1 });
    const got: string[] = [];
    bus.subscribe("x", (m) => got.push(text(m.data)));
    for (const s of ["a", "b", "c"]) bus.publish("x", bytes(s));
    await clock.runFor(0);
    assert.deepEqual(got, ["a", "a", "b", "b", "c", "c"]);
  });

  await t.step("a fixed delay lands each message exactly that much later", async () => {
    const { clock, bus } = world({ delay: { minMs: 100, maxMs: 100 } });
    const got: number[] = [];
    bus.subscribe("x", () => got.push(clock.now() - t0));
    bus.publish("x", bytes(""));
    await clock.runFor(99);
    assert.deepEqual(got, []);
    await clock.runFor(1);
    assert.deepEqual(got, [100]);
  });

  await t.step("random delays never reorder one connection's messages", async () => {
    const { clock, bus } = world({ delay: (random) => random.float() * 500 });
    const got: [number, number][] = [];
    const sub = bus.connect();
    sub.subscribe("x.>", (m) => got.push([Number(text(m.data)), clock.now() - t0]));
    for (let i = 0; i < 100; i++) {
      bus.publish(`x.${i % 4}`, bytes(String(i)));
      await clock.runFor(3);
    }
    await clock.runFor(1000);
    assert.deepEqual(got.map(([i]) => i), Array.from({ length: 100 }, (_, i) => i));
    assert.ok(got.every(([i, at], k) => at >= 3 * i && (k === 0 || at >= got[k - 1]![1])));
    assert.ok(got.some(([i, at]) => at > 3 * i + 100), "no message was delayed");
  });

  await t.step("a message in flight is not delivered after unsubscribe", async () => {
    const { clock, bus } = world({ delay: { minMs: 100, maxMs: 100 } });
    let got = 0;
    const unsubscribe = bus.connect().subscribe("x", () => got++);
    bus.publish("x", bytes(""));
    await clock.runFor(50);
    unsubscribe();
    await clock.runFor(100);
    assert.equal(got, 0);
  });

  await t.step("faults can change mid-run", async () => {
    const { clock, bus } = world();
    let got = 0;
    bus.subscribe("x", () => got++);
    bus.faults.set({ dropProbability: 1 });
    assert.equal(bus.faults.options.dropProbability, 1);
    bus.publish("x", bytes(""));
    bus.faults.set({});
    bus.publish("x", bytes(""));
    await clock.runFor(0);
    assert.equal(got, 1);
  });

  await t.step("a partition cuts one component's subjects until healed", async () => {
    const { clock, bus } = world();
    const oven = bus.connect("oven");
    const watcher = bus.connect("watcher");
    const seen: string[] = [];
    watcher.subscribe("fornax.m1.*.evt.>", (m) => seen.push(m.subject));
    oven.subscribe("fornax.m1.oven.cmd.heat", (m) => m.respond?.(bytes("on")));

    bus.faults.partition("fornax.m1.oven.>");
    assert.deepEqual(bus.faults.partitions(), ["fornax.m1.oven.>"]);
    oven.publish("fornax.m1.oven.evt.temp", bytes(""));
    oven.publish("fornax.m1.arm.evt.pos", bytes(""));
    const cut = await outcome(clock, bus.request("fornax.m1.oven.cmd.heat", bytes(""), 500), 500);
    assert.ok("error" in cut && cut.error instanceof BusTimeoutError, "cut request must time out");
    const nobody = await outcome(clock, bus.request("fornax.m1.oven.cmd.none", bytes(""), 50), 50);
    assert.ok("error" in nobody && nobody.error instanceof BusTimeoutError);
    assert.deepEqual(seen, ["fornax.m1.arm.evt.pos"]);

    bus.faults.heal("fornax.m1.oven.>");
    assert.deepEqual(bus.faults.partitions(), []);
    oven.publish("fornax.m1.oven.evt.temp", bytes(""));
    const healed = await outcome(clock, bus.request("fornax.m1.oven.cmd.heat", bytes(""), 500), 0);
    assert.equal("value" in healed && text(healed.value), "on");
    assert.deepEqual(seen, ["fornax.m1.arm.evt.pos", "fornax.m1.oven.evt.temp"]);
  });

  await t.step("a partition of everything, and healAll", async () => {
    const { clock, bus } = world();
    let got = 0;
    bus.connect().subscribe("a.b.c", () => got++);
    bus.faults.partition(">");
    bus.faults.partition("a.*.c");
    bus.publish("a.b.c", bytes(""));
    bus.faults.heal(">");
    bus.publish("a.b.c", bytes(""));
    await clock.runFor(0);
    assert.equal(got, 0);
    bus.faults.healAll();
    bus.publish("a.b.c", bytes(""));
    await clock.runFor(0);
    assert.equal(got, 1);
  });

  await t.step("messages in flight when a partition starts are lost", async () => {
    const { clock, bus } = world({ delay: { minMs: 100, maxMs: 100 } });
    const reasons: string[] = [];
    bus.tap((e) => e.type === "drop" && reasons.push(e.reason!));
    let got = 0;
    bus.connect().subscribe("fornax.m1.oven.evt.temp", () => got++);
    bus.publish("fornax.m1.oven.evt.temp", bytes(""));
    await clock.runFor(50);
    bus.faults.partition("fornax.m1.oven.>");
    await clock.runFor(100);
    assert.equal(got, 0);
    assert.deepEqual(reasons, ["partition"]);
  });

  await t.step(
    "a reply cut by a partition that starts mid-request times the request out",
    async () => {
      const { clock, bus } = world({ delay: { minMs: 10, maxMs: 10 } });
      bus.connect().subscribe("fornax.m1.oven.cmd.heat", (m) => {
        bus.faults.partition("fornax.m1.oven.>");
        m.respond?.(bytes("on"));
      });
      const r = await outcome(clock, bus.request("fornax.m1.oven.cmd.heat", bytes(""), 100), 100);
      assert.ok("error" in r && r.error instanceof BusTimeoutError);
    },
  );

  await t.step("a zero-delay message loop trips the clock's runaway guard", async () => {
    const clock = createVirtualClock(t0, { maxTimersPerInstant: 1000 });
    const bus = createSimBus({ clock, random: createSeededRandom(1) });
    bus.subscribe("ping", () => bus.publish("pong", bytes("")));
    bus.subscribe("pong", () => bus.publish("ping", bytes("")));
    bus.publish("ping", bytes(""));
    await assert.rejects(clock.runFor(1), RunawayError);
  });
});

Deno.test("sim bus: subscriptions made and dropped after a subject was routed take effect", async () => {
  const { clock, bus } = world();
  const got: string[] = [];
  const a = bus.connect("a");
  const b = bus.connect("b");
  const pub = bus.connect("pub");
  const offA = a.subscribe("fornax.m1.oven.evt.>", () => got.push("a"));
  pub.publish("fornax.m1.oven.evt.temperature", bytes("1"));
  await clock.runFor(1);
  assert.deepEqual(got, ["a"]);
  // The subject is routed (and remembered) now: a newer subscriber still hears it, after a.
  const offB = b.subscribe("fornax.*.oven.evt.temperature", () => got.push("b"));
  b.subscribe("fornax.m1.oven.evt.progress", () => got.push("b-progress"));
  pub.publish("fornax.m1.oven.evt.temperature", bytes("2"));
  await clock.runFor(1);
  assert.deepEqual(got, ["a", "a", "b"]);
  offA();
  pub.publish("fornax.m1.oven.evt.temperature", bytes("3"));
  await clock.runFor(1);
  assert.deepEqual(got, ["a", "a", "b", "b"]);
  offB();
  pub.publish("fornax.m1.oven.evt.temperature", bytes("4"));
  await clock.runFor(1);
  assert.deepEqual(got, ["a", "a", "b", "b"]);
  // A queue group joining later splits the subject among its members only.
  const offQ = ["q1", "q2"].map((name) =>
    bus.connect(name).subscribe("fornax.m1.oven.evt.temperature", () => got.push(name), {
      queue: "g",
    })
  );
  pub.publish("fornax.m1.oven.evt.temperature", bytes("5"));
  await clock.runFor(1);
  assert.equal(got.length, 5);
  assert.match(got[4]!, /^q[12]$/);
  // A member that left is never chosen: every message reaches the one left.
  offQ[0]!();
  for (let i = 0; i < 20; i++) pub.publish("fornax.m1.oven.evt.temperature", bytes("6"));
  await clock.runFor(1);
  assert.deepEqual(got.slice(5), Array(20).fill("q2"));
});
