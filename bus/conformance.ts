/**
 * One conformance suite for every `Bus`: the real NATS bus and the simulator's
 * bus run the same steps, so an actor that passes on one behaves alike on the
 * other.
 *
 * "Nothing else arrived" is checked without sleeping: after the probes, the
 * same connection publishes a marker, and once the marker is in, every probe
 * would have been too (what one connection sends another arrives in order).
 */
import assert from "node:assert/strict";
import { type Bus, BusTimeoutError, NoRespondersError } from "./bus.ts";

/** What the suite needs from an implementation. */
export interface BusConformanceTarget {
  /** Opens a new connection to the shared server (or simulated world). */
  connect(): Promise<Bus>;
  /** A subject prefix no other test uses (tokens only, no wildcards). */
  prefix: string;
  /**
   * Lets time pass (wall time, or the virtual clock) until `done()` is true.
   *
   * @throws {Error} Naming `what` when that never happens.
   */
  advanceUntil(what: string, done: () => boolean): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const bytes = (s: string) => enc.encode(s);
const text = (b: Uint8Array) => dec.decode(b);

/**
 * Runs the conformance steps as `t.step`s against `target`; closes every
 * connection it opens.
 */
export async function runBusConformance(
  t: Deno.TestContext,
  target: BusConformanceTarget,
): Promise<void> {
  const { prefix } = target;
  const opened: Bus[] = [];
  const connect = async () => {
    const bus = await target.connect();
    opened.push(bus);
    return bus;
  };
  /** Subscribes and records "<subject> <text>" per message. */
  const record = (bus: Bus, pattern: string, queue?: string) => {
    const seen: string[] = [];
    const unsubscribe = bus.subscribe(
      pattern,
      (m) => seen.push(`${m.subject} ${text(m.data)}`),
      queue ? { queue } : {},
    );
    return { seen, unsubscribe };
  };
  /** Resolves with the outcome of `promise`, letting time pass until it settles. */
  const outcome = async <T>(what: string, promise: Promise<T>) => {
    let result: { value: T } | { error: unknown } | undefined;
    promise.then((value) => result = { value }, (error) => result = { error });
    await target.advanceUntil(what, () => result !== undefined);
    return result!;
  };

  try {
    const pub = await connect();
    const sub = await connect();

    await t.step("a subject reaches its exact subscribers only", async () => {
      const s = `${prefix}.exact`;
      const exact = record(sub, `${s}.a`);
      const shorter = record(sub, s);
      const longer = record(sub, `${s}.a.b`);
      const marker = record(sub, `${s}.end`);
      await sub.flush();
      pub.publish(`${s}.a`, bytes("one"));
      pub.publish(`${s}.end`, bytes(""));
      await target.advanceUntil("marker", () => marker.seen.length === 1);
      assert.deepEqual(exact.seen, [`${s}.a one`]);
      assert.deepEqual(shorter.seen, []);
      assert.deepEqual(longer.seen, []);
    });

    await t.step("'*' matches one token and '>' one or more", async () => {
      const s = `${prefix}.wild`;
      const star = record(sub, `${s}.w.*`);
      const tail = record(sub, `${s}.w.>`);
      const middle = record(sub, `${s}.*.mid.z`);
      const marker = record(sub, `${s}.end`);
      await sub.flush();
      for (const suffix of ["w", "w.one", "w.one.two", "w.mid.z", "v.mid.z", "v.mid.z.z"]) {
        pub.publish(`${s}.${suffix}`, bytes(suffix));
      }
      pub.publish(`${s}.end`, bytes(""));
      await target.advanceUntil("marker", () => marker.seen.length === 1);
      assert.deepEqual(star.seen, [`${s}.w.one w.one`]);
      assert.deepEqual(tail.seen, [
        `${s}.w.one w.one`,
        `${s}.w.one.two w.one.two`,
        `${s}.w.mid.z w.mid.z`,
      ]);
      assert.deepEqual(middle.seen, [`${s}.w.mid.z w.mid.z`, `${s}.v.mid.z v.mid.z`]);
    });

    await t.step("a request gets its reply", async () => {
      const s = `${prefix}.rr.echo`;
      sub.subscribe(s, (m) => m.respond?.(bytes(`echo ${text(m.data)}`)));
      await sub.flush();
      const r = await outcome("reply", pub.request(s, bytes("hi"), 5000));
      assert.ok("value" in r, `request failed: ${"error" in r ? r.error : ""}`);
      assert.equal(text(r.value), "echo hi");
    });

    await t.step("a request nobody answers times out", async () => {
      const s = `${prefix}.rr.silent`;
      sub.subscribe(s, () => {});
      await sub.flush();
      const r = await outcome("timeout", pub.request(s, bytes("hello?"), 200));
      assert.ok("error" in r && r.error instanceof BusTimeoutError, `got ${JSON.stringify(r)}`);
    });

    await t.step("a request nobody subscribes to fails with no responders", async () => {
      const r = await outcome("no responders", pub.request(`${prefix}.rr.nobody`, bytes(""), 5000));
      assert.ok("error" in r && r.error instanceof NoRespondersError, `got ${JSON.stringify(r)}`);
    });

    await t.step("a queue group gets each message once, plain subscribers all", async () => {
      const s = `${prefix}.queue`;
      const conns = [sub, await connect(), await connect()];
      const members = conns.map((c) => record(c, s, "workers"));
      const plain = record(conns[1]!, s);
      const markers = conns.map((c) => record(c, `${s}.end`));
      for (const c of conns) await c.flush();
      const n = 30;
      for (let i = 0; i < n; i++) pub.publish(s, bytes(String(i)));
      pub.publish(`${s}.end`, bytes(""));
      await target.advanceUntil("markers", () => markers.every((m) => m.seen.length === 1));
      const got = members.flatMap((m) => m.seen).sort();
      const want = Array.from({ length: n }, (_, i) => `${s} ${i}`).sort();
      assert.deepEqual(got, want);
      assert.equal(plain.seen.length, n);
    });

    await t.step("subscribers on two connections both get a publish", async () => {
      const s = `${prefix}.two`;
      const other = await connect();
      const a = record(sub, s);
      const b = record(other, s);
      await sub.flush();
      await other.flush();
      pub.publish(s, bytes("both"));
      await target.advanceUntil("both", () => a.seen.length === 1 && b.seen.length === 1);
      assert.deepEqual([a.seen, b.seen], [[`${s} both`], [`${s} both`]]);
    });

    await t.step("unsubscribe stops delivery", async () => {
      const s = `${prefix}.unsub`;
      const gone = record(sub, s);
      const kept = record(sub, s);
      await sub.flush();
      pub.publish(s, bytes("1"));
      await target.advanceUntil("first", () => gone.seen.length === 1 && kept.seen.length === 1);
      gone.unsubscribe();
      gone.unsubscribe();
      await sub.flush();
      pub.publish(s, bytes("2"));
      await target.advanceUntil("second", () => kept.seen.length === 2);
      assert.deepEqual(gone.seen, [`${s} 1`]);
    });

    await t.step("one publisher's messages arrive in order, across subjects", async () => {
      const s = `${prefix}.order`;
      const all = record(sub, `${s}.>`);
      await sub.flush();
      const n = 200;
      for (let i = 0; i < n; i++) pub.publish(`${s}.${i % 3}`, bytes(String(i)));
      await target.advanceUntil("all", () => all.seen.length === n);
      assert.deepEqual(
        all.seen,
        Array.from({ length: n }, (_, i) => `${s}.${i % 3} ${i}`),
      );
    });
  } finally {
    for (const bus of opened) await bus.close();
  }
}
