/**
 * The supervisor's bounded book of alerts. One open alert per key (its type
 * and the component or order it is about): a repeat updates that alert rather
 * than adding another, so a flapping sensor cannot flood the operator.
 */
import type { Alert } from "../../protocol/entities.ts";

/** An alert with the key that deduplicates it. */
export interface AlertEntry {
  key: string;
  alert: Alert;
}

/** Alerts, oldest first; never more than `capacity`. */
export interface AlertBook {
  capacity: number;
  entries: AlertEntry[];
}

/** How many alerts the supervisor keeps by default. */
export const defaultAlertCapacity = 200;

/** An empty book holding at most `capacity` alerts. */
export function emptyAlertBook(capacity = defaultAlertCapacity): AlertBook {
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new RangeError(`Alert capacity must be a positive integer, got "${capacity}"`);
  }
  return { capacity, entries: [] };
}

/** The deduplication key of an alert of `type` about `subject` (an order id or a component). */
export function alertKey(type: Alert["type"], subject: string): string {
  return `${type}|${subject}`;
}

/** The open alert of `key`, if any. */
export function openAlertOf(book: AlertBook, key: string): Alert | undefined {
  return book.entries.find((e) => e.key === key && !e.alert.resolved)?.alert;
}

/** The alert of `alertId`, open or resolved, if the book still holds it. */
export function findAlert(book: AlertBook, alertId: string): Alert | undefined {
  return book.entries.find((e) => e.alert.alertId === alertId)?.alert;
}

/** Open alerts, oldest first. */
export function openAlerts(book: AlertBook): Alert[] {
  return book.entries.filter((e) => !e.alert.resolved).map((e) => e.alert);
}

/**
 * Records `alert` under `key`: when an alert of that key is open, its severity
 * and message take the new values and it keeps its id and creation time;
 * otherwise `alert` is added (evicting the oldest resolved alert, or else the
 * oldest one, when the book is full). Returns the new book and the stored alert.
 */
export function upsertAlert(
  book: AlertBook,
  key: string,
  alert: Alert,
): { book: AlertBook; alert: Alert } {
  const index = book.entries.findIndex((e) => e.key === key && !e.alert.resolved);
  if (index >= 0) {
    const previous = book.entries[index]!.alert;
    const updated: Alert = { ...previous, severity: alert.severity, message: alert.message };
    const entries = book.entries.slice();
    entries[index] = { key, alert: updated };
    return { book: { ...book, entries }, alert: updated };
  }
  const stored: Alert = { ...alert, resolved: false, resolvedAt: null };
  const entries = [...book.entries, { key, alert: stored }];
  while (entries.length > book.capacity) {
    const oldestResolved = entries.findIndex((e) => e.alert.resolved);
    entries.splice(oldestResolved >= 0 ? oldestResolved : 0, 1);
  }
  return { book: { ...book, entries }, alert: stored };
}

/**
 * Resolves the alert of `alertId` at `nowMs`; an already resolved alert stays
 * as it was. Returns the new book and the alert, or null when unknown.
 */
export function resolveAlertById(
  book: AlertBook,
  alertId: string,
  nowMs: number,
): { book: AlertBook; alert: Alert | null } {
  const index = book.entries.findIndex((e) => e.alert.alertId === alertId);
  if (index < 0) return { book, alert: null };
  const entry = book.entries[index]!;
  if (entry.alert.resolved) return { book, alert: entry.alert };
  const resolved: Alert = { ...entry.alert, resolved: true, resolvedAt: nowMs };
  const entries = book.entries.slice();
  entries[index] = { key: entry.key, alert: resolved };
  return { book: { ...book, entries }, alert: resolved };
}
