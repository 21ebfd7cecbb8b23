import assert from "node:assert/strict";
import { openJournal, transaction } from "../../journal/journal.ts";
import {
  CarouselStore,
  type Reservation,
  type ReservationStatus,
  type StoredItem,
} from "./store.ts";

const batch = (itemId: string, quantity: number): StoredItem => ({
  itemId,
  pizzaId: "margherita",
  storageSlot: 0,
  quantity,
  expiresAt: 10_000,
  addedAt: 0,
  aboveLimitMs: 0,
});

const reservation = (orderId: string, status: ReservationStatus): Reservation => ({
  orderId,
  pizzaId: "margherita",
  status,
  reservedAt: 0,
  updatedAt: 0,
  itemId: null,
  storageSlot: null,
  expiresAt: null,
  error: null,
});

Deno.test("carousel store: the cached stock lists never outlive the journal", async (t) => {
  const db = openJournal(":memory:");
  const store = new CarouselStore(db);
  store.insertItem(batch("a", 3));

  await t.step("a write is seen by the next read", () => {
    assert.deepEqual(store.items().map((i) => i.quantity), [3]);
    store.setQuantity("a", 2);
    assert.deepEqual(store.items().map((i) => i.quantity), [2]);
  });

  await t.step("inside a transaction the journal answers, also for its own writes", () => {
    transaction(db, () => {
      store.setQuantity("a", 1);
      assert.deepEqual(store.items().map((i) => i.quantity), [1]);
    });
    assert.deepEqual(store.items().map((i) => i.quantity), [1]);
  });

  await t.step("a rolled back write leaves no trace in the lists", () => {
    assert.throws(() =>
      transaction(db, () => {
        store.insertItem(batch("b", 5));
        store.putReservation(reservation("o-1", "RESERVED"));
        assert.equal(store.items().length, 2);
        throw new Error("refused");
      })
    );
    assert.deepEqual(store.items().map((i) => i.itemId), ["a"]);
    assert.deepEqual(store.reservations(), []);
    assert.deepEqual(store.activeReservations(), []);
  });
  await t.step("the active list holds only reservations still holding or taking a pizza", () => {
    store.putReservation(reservation("o-2", "RESERVED"));
    store.putReservation(reservation("o-3", "DONE"));
    assert.deepEqual(store.activeReservations().map((r) => r.orderId), ["o-2"]);
    store.putReservation(reservation("o-2", "RETRIEVING"));
    store.putReservation(reservation("o-3", "RESERVED"));
    assert.deepEqual(store.activeReservations().map((r) => [r.orderId, r.status]), [
      ["o-2", "RETRIEVING"],
      ["o-3", "RESERVED"],
    ]);
    store.putReservation(reservation("o-2", "DONE"));
    assert.deepEqual(store.activeReservations().map((r) => r.orderId), ["o-3"]);
  });
  db.close();
});
