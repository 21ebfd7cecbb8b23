import assert from "node:assert/strict";
import type { Alert } from "../../protocol/entities.ts";
import {
  alertKey,
  emptyAlertBook,
  findAlert,
  openAlerts,
  resolveAlertById,
  upsertAlert,
} from "./alert_book.ts";

function alert(id: string, message: string, severity: Alert["severity"] = "WARNING"): Alert {
  return {
    alertId: id,
    machineId: "m-1",
    type: "LOW_INVENTORY",
    severity,
    message,
    resolved: false,
    createdAt: 1,
    resolvedAt: null,
  };
}

Deno.test("alert book: one open alert per key, bounded", async (t) => {
  await t.step("a repeat of an open key updates it instead of adding one", () => {
    const key = alertKey("LOW_INVENTORY", "carousel");
    let book = upsertAlert(emptyAlertBook(), key, alert("a", "2 left")).book;
    const second = upsertAlert(book, key, alert("b", "1 left", "CRITICAL"));
    book = second.book;
    assert.equal(openAlerts(book).length, 1);
    assert.equal(second.alert.alertId, "a");
    assert.equal(second.alert.message, "1 left");
    assert.equal(second.alert.severity, "CRITICAL");
  });

  await t.step("after resolving, the same key opens a new alert", () => {
    const key = alertKey("LOW_INVENTORY", "carousel");
    let book = upsertAlert(emptyAlertBook(), key, alert("a", "2 left")).book;
    const resolved = resolveAlertById(book, "a", 50);
    assert.equal(resolved.alert?.resolved, true);
    assert.equal(resolved.alert?.resolvedAt, 50);
    book = upsertAlert(resolved.book, key, alert("b", "0 left")).book;
    assert.deepEqual(openAlerts(book).map((a) => a.alertId), ["b"]);
    assert.equal(findAlert(book, "a")?.resolved, true);
  });

  await t.step("resolving an unknown id changes nothing; resolving twice keeps the first", () => {
    const book = upsertAlert(emptyAlertBook(), "k", alert("a", "x")).book;
    assert.equal(resolveAlertById(book, "nope", 5).alert, null);
    const once = resolveAlertById(book, "a", 5);
    const twice = resolveAlertById(once.book, "a", 9);
    assert.equal(twice.alert?.resolvedAt, 5);
  });

  await t.step("the book never exceeds its capacity and evicts resolved alerts first", () => {
    let book = emptyAlertBook(3);
    book = upsertAlert(book, "k0", alert("a0", "x")).book;
    book = upsertAlert(book, "k1", alert("a1", "x")).book;
    book = resolveAlertById(book, "a1", 2).book;
    book = upsertAlert(book, "k2", alert("a2", "x")).book;
    book = upsertAlert(book, "k3", alert("a3", "x")).book;
    assert.deepEqual(book.entries.map((e) => e.alert.alertId), ["a0", "a2", "a3"]);
    for (let i = 4; i < 300; i++) book = upsertAlert(book, `k${i}`, alert(`a${i}`, "x")).book;
    assert.equal(book.entries.length, 3);
    assert.deepEqual(book.entries.map((e) => e.alert.alertId), ["a297", "a298", "a299"]);
    assert.throws(() => emptyAlertBook(0), RangeError);
  });
});
