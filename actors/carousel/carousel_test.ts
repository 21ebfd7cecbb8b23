import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Inventory,
  inventory,
  release,
  reserve,
  restock,
  retrieve,
  service,
} from "../../protocol/carousel.ts";
import { daysFromNow, startRig, testConfig, until } from "./test_fixture.ts";
import { waitFor } from "../../testing/nats.ts";
import { sleep } from "../../clock/clock.ts";

const order = () => crypto.randomUUID();

Deno.test("carousel: restock, reserve, retrieve", async (t) => {
  // Rotations wait at this gate while a step holds it closed.
  let gate: Promise<void> = Promise.resolve();
  const rig = await startRig({
    // The gate holds a rotation for a few wall ms; keep its deadline well clear of that.
    carousel: { rotateTimeoutMs: 10 * 60_000 },
    driver: (sim) => ({
      ...sim,
      rotateTo: async (slot, signal) => {
        await gate;
        return sim.rotateTo(slot, signal);
      },
    }),
  });
  try {
    const soon = daysFromNow(rig, 1);
    const later = daysFromNow(rig, 3);
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [
        { pizzaId: "margherita", quantity: 2, storageSlot: 0, expiresAt: later },
        { pizzaId: "margherita", quantity: 1, storageSlot: 7, expiresAt: soon },
        { pizzaId: "pepperoni", quantity: 2, storageSlot: 2, expiresAt: later },
      ],
    });

    await t.step("restock shows in the inventory and publishes changed", async () => {
      const inv = await rig.must(inventory, {});
      assert.equal(inv.items.length, 3);
      assert.deepEqual(inv.available, { margherita: 3, pepperoni: 2, veggie: 0 });
      assert.equal(inv.salesStopped, false);
      await until("changed event", () => rig.events.changed >= 1);
    });

    const o1 = order();
    await t.step("a reservation holds one pizza and is idempotent per order", async () => {
      assert.deepEqual(await rig.must(reserve, { orderId: o1, pizzaId: "margherita" }), {
        pizzaId: "margherita",
        available: 2,
      });
      assert.deepEqual(await rig.must(reserve, { orderId: o1, pizzaId: "margherita" }), {
        pizzaId: "margherita",
        available: 2,
      });
      const other = await rig.call(reserve, { orderId: o1, pizzaId: "pepperoni" });
      assert.equal(!other.ok && other.error.code, "CONFLICT");
      const inv = await rig.must(inventory, {});
      assert.deepEqual(inv.reservations, [{ orderId: o1, pizzaId: "margherita" }]);
      assert.equal(inv.available.margherita, 2);
    });

    await t.step("retrieval takes the earliest-expiring pizza and decrements stock", async () => {
      const first = await rig.must(retrieve, { orderId: o1 });
      assert.equal(first.status, "RUNNING");
      assert.equal(first.storageSlot, 7);
      assert.equal(first.expiresAt, soon);
      const done = await waitFor("retrieval done", async () => {
        const r = await rig.must(retrieve, { orderId: o1 });
        return r.status === "DONE" ? r : undefined;
      });
      assert.equal(done.itemId, first.itemId);
      await until("retrieved event", () => rig.events.retrieved.length === 1);
      assert.deepEqual(rig.events.retrieved[0]!.storageSlot, 7);
      assert.equal(rig.sim.model.ejectedBySlot.get(7), 1);
      const inv = await rig.must(inventory, {});
      assert.equal(inv.items.find((i) => i.storageSlot === 7), undefined);
      assert.equal(inv.available.margherita, 2);
      assert.deepEqual(inv.reservations, []);
      assert.equal((await rig.must(retrieve, { orderId: o1 })).status, "DONE");
    });

    await t.step("retrieve without a reservation is NOT_FOUND", async () => {
      const r = await rig.call(retrieve, { orderId: order() });
      assert.equal(!r.ok && r.error.code, "NOT_FOUND");
    });

    await t.step("sold out is CONFLICT; release frees the pizza, idempotently", async () => {
      const a = order();
      const b = order();
      assert.equal(
        (await rig.must(reserve, { orderId: order(), pizzaId: "pepperoni" })).available,
        1,
      );
      assert.equal((await rig.must(reserve, { orderId: a, pizzaId: "pepperoni" })).available, 0);
      const soldOut = await rig.call(reserve, { orderId: b, pizzaId: "pepperoni" });
      assert.equal(!soldOut.ok && soldOut.error.code, "CONFLICT");
      assert.match(!soldOut.ok ? soldOut.error.message : "", /sold out/);
      const unknown = await rig.call(reserve, { orderId: b, pizzaId: "hawaii" });
      assert.equal(!unknown.ok && unknown.error.code, "CONFLICT");
      assert.deepEqual(await rig.must(release, { orderId: a }), { released: true });
      assert.deepEqual(await rig.must(release, { orderId: a }), { released: false });
      assert.equal((await rig.must(reserve, { orderId: b, pizzaId: "pepperoni" })).available, 0);
    });

    await t.step("falling below the low-stock threshold raises LOW_INVENTORY", async () => {
      await until(
        "LOW_INVENTORY alert for pepperoni",
        () =>
          rig.events.alerts.some((a) => a.type === "LOW_INVENTORY" && /pepperoni/.test(a.message)),
      );
    });

    await t.step("queued retrievals run one after another", async () => {
      const c = order();
      const d = order();
      await rig.must(reserve, { orderId: c, pizzaId: "margherita" });
      await rig.must(reserve, { orderId: d, pizzaId: "margherita" });
      const [rc, rd] = await Promise.all([
        rig.must(retrieve, { orderId: c }),
        rig.must(retrieve, { orderId: d }),
      ]);
      assert.deepEqual([rc.status, rd.status], ["RUNNING", "RUNNING"]);
      assert.deepEqual([rc.storageSlot, rd.storageSlot], [0, 0]);
      await until("both retrieved", () => rig.events.retrieved.length === 3);
      assert.equal(rig.sim.model.ejectedBySlot.get(0), 2);
      const inv = await rig.must(inventory, {});
      assert.equal(inv.available.margherita, 0);
      assert.equal(inv.items.filter((i) => i.pizzaId === "margherita").length, 0);
    });

    await t.step(
      "a jammed carousel fails the retrieval and refuses sales until service",
      async () => {
        await rig.must(restock, {
          performedBy: "tech-1",
          items: [{ pizzaId: "veggie", quantity: 3, storageSlot: 4, expiresAt: later }],
        });
        const e = order();
        const g = order();
        await rig.must(reserve, { orderId: e, pizzaId: "veggie" });
        await rig.must(reserve, { orderId: g, pizzaId: "veggie" });
        const opened = Promise.withResolvers<void>();
        gate = opened.promise;
        await rig.must(retrieve, { orderId: e });
        await rig.must(retrieve, { orderId: g });
        rig.sim.model.setJammed(true);
        opened.resolve();
        const failed = await waitFor("retrieval fault", async () => {
          const r = await rig.call(retrieve, { orderId: e });
          return r.ok ? undefined : r;
        });
        assert.equal(!failed.ok && failed.error.code, "FAULT");
        assert.ok(rig.events.alerts.some((a) => a.type === "EQUIPMENT_FAILURE"));
        const refused = await rig.call(reserve, { orderId: order(), pizzaId: "veggie" });
        assert.equal(!refused.ok && refused.error.code, "CONFLICT");
        // g waits behind the fault; releasing it puts its pizza back.
        assert.equal((await rig.must(retrieve, { orderId: g })).status, "RUNNING");
        assert.deepEqual(await rig.must(release, { orderId: g }), { released: true });
        rig.sim.model.setJammed(false);
        await rig.must(service, { performedBy: "tech-2", note: "cleared jam" });
        // 3 restocked, 1 written off in the jam.
        assert.equal((await rig.must(inventory, {})).available.veggie, 2);
        const f = order();
        await rig.must(reserve, { orderId: f, pizzaId: "veggie" });
        await rig.must(retrieve, { orderId: f });
        await until("retrieved after service", () => rig.events.retrieved.length === 4);
      },
    );
  } finally {
    await rig.close();
  }
});

Deno.test("carousel: a restock under an idempotency key loads its pizzas once", async (t) => {
  const rig = await startRig();
  try {
    const loading = {
      performedBy: "tech-1",
      items: [{
        pizzaId: "margherita",
        quantity: 3,
        storageSlot: 0,
        expiresAt: daysFromNow(rig, 3),
      }],
      idempotencyKey: "visit-1",
    };
    const first = await rig.must(restock, loading);
    assert.equal(first.available.margherita, 3);

    await t.step(
      "a retry (its reply was lost, or the bus sent it twice) loads nothing",
      async () => {
        const again = await rig.must(restock, loading);
        assert.deepEqual(again.items, first.items);
        assert.equal((await rig.must(inventory, {})).available.margherita, 3);
      },
    );
    await t.step("the key is journaled: a retry after a restart loads nothing either", async () => {
      await rig.stopActor();
      rig.restartActor();
      assert.deepEqual((await rig.must(restock, loading)).items, first.items);
    });
    await t.step("the same key with other lines is a CONFLICT that changes nothing", async () => {
      const other = { ...loading, items: [{ ...loading.items[0]!, quantity: 2 }] };
      const r = await rig.call(restock, other);
      assert.equal(!r.ok && r.error.code, "CONFLICT");
      assert.match(!r.ok ? r.error.message : "", /visit-1/);
      assert.deepEqual((await rig.must(inventory, {})).items, first.items);
    });
    await t.step("without a key, each restock loads: the key is what tells a retry", async () => {
      const { idempotencyKey: _, ...unkeyed } = loading;
      await rig.must(restock, unkeyed);
      assert.equal((await rig.must(restock, unkeyed)).available.margherita, 9);
    });
  } finally {
    await rig.close();
  }
});

Deno.test("carousel: refuses bad restocks and bad requests, changing nothing", async (t) => {
  const rig = await startRig();
  try {
    const later = daysFromNow(rig, 3);
    await rig.must(restock, {
      performedBy: "tech-1",
      items: [{ pizzaId: "margherita", quantity: 5, storageSlot: 0, expiresAt: later }],
    });
    await rig.must(reserve, { orderId: order(), pizzaId: "margherita" });
    const before = await rig.must(inventory, {});
    const unchanged = async () => {
      const now = await rig.must(inventory, {});
      assert.deepEqual(now.items, before.items);
      assert.deepEqual(now.available, before.available);
      assert.deepEqual(now.reservations, before.reservations);
    };
    const line = (over: Record<string, unknown>) => ({
      pizzaId: "pepperoni",
      quantity: 1,
      storageSlot: 3,
      expiresAt: later,
      ...over,
    });

    await t.step("each bad restock is refused with the right code", async () => {
      const cases: [string, unknown[], string][] = [
        ["slot held by another pizza", [line({ storageSlot: 0 })], "CONFLICT"],
        [
          "slot beyond the carousel",
          [line({ storageSlot: testConfig.storageSlots })],
          "BAD_REQUEST",
        ],
        [
          "over the slot capacity",
          [line({ storageSlot: 0, pizzaId: "margherita", quantity: 16 })],
          "CONFLICT",
        ],
        ["two pizzas in one slot", [line({}), line({ pizzaId: "veggie" })], "CONFLICT"],
        ["already expired", [line({ expiresAt: rig.tb.clock.now() - 1000 })], "BAD_REQUEST"],
        ["not on the menu", [line({ pizzaId: "hawaii" })], "BAD_REQUEST"],
        ["zero quantity", [line({ quantity: 0 })], "BAD_REQUEST"],
        ["good line then bad line", [line({}), line({ storageSlot: 99 })], "BAD_REQUEST"],
      ];
      for (const [name, items, code] of cases) {
        const r = await rig.rawCall(restock as never, { performedBy: "x", items });
        assert.equal(r.ok, false, name);
        assert.equal(!r.ok && r.error.code, code, name);
        await unchanged();
      }
    });

    await t.step("property: any junk body gets BAD_REQUEST and changes nothing", async () => {
      const subjects = [restock, reserve, release, retrieve, service, inventory]
        .map((d) => d.subject(rig.tb.machineId));
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...subjects), fc.jsonValue(), async (subject, body) => {
          const raw = await rig.tb.raw.request(
            subject,
            new TextEncoder().encode(JSON.stringify(body)),
            5000 * 1000,
          );
          const reply = JSON.parse(new TextDecoder().decode(raw));
          assert.equal(reply.ok, false);
          assert.equal(reply.error.code, "BAD_REQUEST");
        }),
        { numRuns: 40 },
      );
      await unchanged();
    });

    await t.step("property: a restock with any bad line is refused whole", async () => {
      const good = fc.record({
        pizzaId: fc.constantFrom("pepperoni", "veggie"),
        quantity: fc.integer({ min: 1, max: 3 }),
        storageSlot: fc.integer({ min: 1, max: testConfig.storageSlots - 1 }),
        expiresAt: fc.constant(later),
      });
      const bad = fc.oneof(
        good.map((l) => ({ ...l, storageSlot: testConfig.storageSlots + l.storageSlot })),
        good.map((l) => ({ ...l, pizzaId: `not-${l.pizzaId}` })),
        good.map((l) => ({ ...l, expiresAt: 1 })),
        good.map((l) => ({ ...l, quantity: -l.quantity })),
        good.map((l) => ({ ...l, storageSlot: 0 })),
        good.map((l) => ({ ...l, quantity: 1000 })),
      );
      await fc.assert(
        fc.asyncProperty(
          fc.array(good, { maxLength: 3 }),
          bad,
          fc.array(good, { maxLength: 3 }),
          async (head, wrong, tail) => {
            const r = await rig.rawCall(restock as never, {
              performedBy: "fuzz",
              items: [...head, wrong, ...tail],
            });
            assert.equal(r.ok, false);
            assert.ok(!r.ok && ["BAD_REQUEST", "CONFLICT"].includes(r.error.code));
          },
        ),
        { numRuns: 40 },
      );
      await unchanged();
    });
  } finally {
    await rig.close();
  }
});

Deno.test("carousel: stock and reservations survive a restart on the same journal", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "fornax-carousel-" });
  const journalPath = `${dir}/journal.db`;
  const initialStock = [{ pizzaId: "veggie", quantity: 4, storageSlot: 9, expiresAt: 0 }];
  try {
    // The first run's rotation to slot 6 takes an hour (3.6 s of wall time),
    // so the stop comes while that retrieval is surely still under way.
    const holdMs = 3_600_000;
    const rig = await startRig({
      journalPath,
      carousel: { rotateTimeoutMs: 2 * holdMs },
      driver: (sim) => ({
        ...sim,
        rotateTo: (slot, signal) =>
          slot === 6 ? sleep(rig.tb.clock, holdMs, signal) : sim.rotateTo(slot, signal),
      }),
    });
    initialStock[0]!.expiresAt = daysFromNow(rig, 2);
    const held = order();
    const taken = order();
    const interrupted = order();
    let before: Inventory | undefined;
    try {
      await t.step("a first run restocks, reserves and retrieves", async () => {
        await rig.must(restock, {
          performedBy: "tech-1",
          items: [
            { pizzaId: "margherita", quantity: 3, storageSlot: 1, expiresAt: daysFromNow(rig, 2) },
          ],
        });
        await rig.must(reserve, { orderId: held, pizzaId: "margherita" });
        await rig.must(reserve, { orderId: taken, pizzaId: "margherita" });
        await rig.must(retrieve, { orderId: taken });
        await until("retrieved", () => rig.events.retrieved.length === 1);
      });
      before = await rig.must(inventory, {});
      await t.step("a retrieval is cut short by stopping the actor", async () => {
        await rig.must(restock, {
          performedBy: "tech-1",
          items: [{
            pizzaId: "pepperoni",
            quantity: 1,
            storageSlot: 6,
            expiresAt: daysFromNow(rig, 2),
          }],
        });
        await rig.must(reserve, { orderId: interrupted, pizzaId: "pepperoni" });
        assert.equal((await rig.must(retrieve, { orderId: interrupted })).status, "RUNNING");
        await rig.stopActor();
      });
    } finally {
      await rig.close();
    }

    const again = await startRig({
      journalPath,
      machineId: rig.tb.machineId,
      carousel: { initialStock },
    });
    try {
      await t.step(
        "a second run on the same file has the same stock and reservations",
        async () => {
          const inv = await again.must(inventory, {});
          assert.deepEqual(inv.items, before?.items);
          assert.deepEqual(inv.reservations, [
            { orderId: held, pizzaId: "margherita" },
            { orderId: interrupted, pizzaId: "pepperoni" },
          ]);
          assert.deepEqual(inv.available, { margherita: 1, pepperoni: 0, veggie: 0 });
        },
      );
      await t.step("initial stock is not loaded into a journal that was stocked", async () => {
        const inv = await again.must(inventory, {});
        assert.equal(inv.items.some((i) => i.pizzaId === "veggie"), false);
      });
      await t.step("reservations still answer: idempotent reserve, DONE retrieve", async () => {
        assert.equal(
          (await again.must(reserve, { orderId: held, pizzaId: "margherita" })).available,
          1,
        );
        assert.equal((await again.must(retrieve, { orderId: taken })).status, "DONE");
      });
      await t.step("an interrupted retrieval carries on with the same pizza", async () => {
        const r = await again.must(retrieve, { orderId: interrupted });
        assert.equal(r.storageSlot, 6);
        await until("retrieved after restart", () => again.events.retrieved.length === 1);
        assert.equal((await again.must(retrieve, { orderId: interrupted })).status, "DONE");
      });
    } finally {
      await again.close();
    }

    await t.step("initial stock is loaded into a fresh journal", async () => {
      const stale = { pizzaId: "pepperoni", quantity: 1, storageSlot: 2, expiresAt: 1 };
      const fresh = await startRig({ carousel: { initialStock: [...initialStock, stale] } });
      try {
        const inv = await fresh.must(inventory, {});
        assert.deepEqual(inv.available, { margherita: 0, pepperoni: 0, veggie: 4 });
        // An expired pizza in the initial stock is discarded, not refused.
        await until("stale pizza discarded", () => fresh.events.discarded.length === 1);
        assert.equal(fresh.events.discarded[0]?.reason, "EXPIRED");
      } finally {
        await fresh.close();
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
