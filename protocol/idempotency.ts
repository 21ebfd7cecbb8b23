/**
 * Idempotency keys: a client picks one per request that acts (an order, a
 * payment, a restock) and sends it again, unchanged, when it retries that
 * request. The machine acts once per key and answers a retry without acting
 * again; a key sent again with a different request is a CONFLICT.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { fail, type Result } from "./define.ts";

/**
 * A key the client picks for one request and sends again, unchanged, when it
 * retries that request (after a timeout, say). Optional wherever it appears:
 * without one, every request acts.
 */
export const IdempotencyKey = z.string().regex(
  /^[\x21-\x7e]{1,128}$/,
  "must be 1-128 visible ASCII characters",
);

/** How long a machine remembers a key: retries come within minutes, not a day later. */
export const keyRetentionMs = 24 * 3_600_000;

/** The CONFLICT a key reused for a different request gets. */
export function keyReused(key: string): Result<never> {
  return fail(
    "CONFLICT",
    `Idempotency key "${key}" was already used for a different request: use a new key for a new request`,
  );
}

/**
 * A digest of the command and its body, so a retry can be told from a new
 * request without journaling the body (a payment token, say).
 */
export function requestFingerprint(verb: string, body: Record<string, unknown>): string {
  return createHash("sha256").update(`${verb}\n${canonicalJson(body)}`).digest("base64url");
}

/** JSON with object keys sorted, so equal bodies give equal text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
