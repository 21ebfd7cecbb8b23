/**
 * Requests under a client's idempotency key (protocol/order.ts): a kiosk that
 * retries after a timeout, or a bus that delivers a request twice, gets the
 * first order or payment instead of a second one. Keys are journaled before the
 * request acts, so this holds across a restart of the controller too.
 */
import { createHash } from "node:crypto";
import { fail, type Result } from "../../protocol/define.ts";
import type { OrderStore } from "./order_store.ts";

/** How long a key is remembered: retries come within minutes, not a day later. */
export const keyRetentionMs = 24 * 3_600_000;

/** What one command does under a key, given the order id the key is bound to. */
export type KeyedAct<R> = (orderId: string) => Promise<Result<R>>;

/** Runs the order component's keyed commands once per key. */
export class KeyedRequests {
  private readonly inFlight = new Map<
    string,
    { fingerprint: string; reply: Promise<Result<unknown>> }
  >();

  /** Keys live in `store`; `now` is the component's clock. */
  constructor(private readonly store: OrderStore, private readonly now: () => number) {}

  /**
   * Runs `act` for the request `verb` with `body` under `key`. Without a key it
   * simply acts, on `newOrderId()`. With one: a request of the same key and body
   * still in flight is joined, a remembered reply is returned, and a different
   * body is a CONFLICT. Otherwise the key is claimed (bound to `newOrderId()` the
   * first time) and `act` runs; a successful reply is remembered, a failed one
   * is not, so a retry acts again on the same order id: a reservation, a card
   * authorization and a bill are each keyed below by that id or by this key.
   */
  run<R>(
    key: string | undefined,
    verb: string,
    body: Record<string, unknown>,
    newOrderId: () => string,
    act: KeyedAct<R>,
  ): Promise<Result<R>> {
    if (key === undefined) return act(newOrderId());
    const fingerprint = fingerprintOf(verb, body);
    const flying = this.inFlight.get(key);
    if (flying) {
      return flying.fingerprint === fingerprint
        ? flying.reply as Promise<Result<R>>
        : Promise.resolve(reused(key));
    }
    const known = this.store.request(key);
    if (known && known.fingerprint !== fingerprint) return Promise.resolve(reused(key));
    if (known?.reply != null) return Promise.resolve({ ok: true, value: known.reply as R });
    const orderId = known?.orderId ?? newOrderId();
    const now = this.now();
    this.store.claimRequest({ key, verb, fingerprint, orderId }, now, now - keyRetentionMs);
    const reply = act(orderId).then((result) => {
      if (result.ok) this.store.answerRequest(key, result.value);
      return result;
    }).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, { fingerprint, reply });
    return reply;
  }
}

function reused(key: string): Result<never> {
  return fail(
    "CONFLICT",
    `Idempotency key "${key}" was already used for a different request: use a new key for a new request`,
  );
}

/**
 * A digest of the command and its body, so a payment token is compared without
 * being journaled.
 */
function fingerprintOf(verb: string, body: Record<string, unknown>): string {
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
