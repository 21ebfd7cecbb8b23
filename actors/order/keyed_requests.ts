/**
 * Requests under a client's idempotency key (protocol/order.ts): a kiosk that
 * retries after a timeout, or a bus that delivers a request twice, gets the
 * first order or payment instead of a second one. Keys are journaled before the
 * request acts, so this holds across a restart of the controller too.
 */
import type { Result } from "../../protocol/define.ts";
import { keyRetentionMs, keyReused, requestFingerprint } from "../../protocol/idempotency.ts";
import type { OrderStore } from "./order_store.ts";

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
    const fingerprint = requestFingerprint(verb, body);
    const flying = this.inFlight.get(key);
    if (flying) {
      return flying.fingerprint === fingerprint
        ? flying.reply as Promise<Result<R>>
        : Promise.resolve(keyReused(key));
    }
    const known = this.store.request(key);
    if (known && known.fingerprint !== fingerprint) return Promise.resolve(keyReused(key));
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
