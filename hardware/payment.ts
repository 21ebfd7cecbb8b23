/**
 * Driver interfaces of the payment hardware and services: the card gateway,
 * the card reader and the cash acceptor. Simulated and real drivers implement
 * the same interfaces; the payment actor never knows which it has.
 *
 * No interface here carries a card number: cards arrive as gateway tokens and
 * leave as their last four digits at most.
 */

/** Per-call options of every gateway and acceptor operation. */
export interface CallOptions {
  /** Aborts the call: the driver rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What an approved gateway call returns. */
export interface GatewayApproval {
  type: "approved";
  /** The gateway's id of the authorization (capture, void and refund name it). */
  transactionId: string;
  /** Last four digits of the card, when the gateway tells them. */
  last4: string | null;
  /** A summary fit to store and publish: never a card number or token. */
  response: Record<string, unknown>;
}

/** A final refusal: retrying with the same request would not change it. */
export interface GatewayDecline {
  type: "declined";
  /** Machine-readable reason, e.g. `card_declined`. */
  code: string;
  message: string;
  last4: string | null;
  response: Record<string, unknown>;
}

/** A transient gateway failure (its 5xx): the same request may succeed later. */
export interface GatewayFailure {
  type: "error";
  code: string;
  message: string;
}

/** Outcome of one gateway call. */
export type GatewayResult = GatewayApproval | GatewayDecline | GatewayFailure;

/** The gateway could not be reached (a transport failure, not an answer). */
export class GatewayNetworkError extends Error {
  /** Creates the error with `message`. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GatewayNetworkError";
  }
}

/** Fields every gateway request carries. */
export interface GatewayRequestBase {
  /**
   * Derived from the order (e.g. `<orderId>:authorize`). A repeated key gets the
   * first result back and never moves money twice, as with Stripe.
   */
  idempotencyKey: string;
  /** The order, as metadata for the gateway's records. */
  orderId: string;
}

/** Authorizes (holds) an amount on a card or wallet. */
export interface AuthorizeRequest extends GatewayRequestBase {
  amountCents: number;
  method: "CARD" | "MOBILE_PAY";
  /**
   * The card or wallet token. Null when re-issuing after a restart, because a
   * token is never journaled: the gateway then answers from its idempotency
   * record, or declines when it never saw the key (so nothing was held).
   */
  token: string | null;
}

/** Captures (charges) a held authorization. */
export interface CaptureRequest extends GatewayRequestBase {
  transactionId: string;
  amountCents: number;
}

/** Releases a held authorization without charge. */
export interface VoidRequest extends GatewayRequestBase {
  transactionId: string;
}

/** Refunds a captured charge. */
export interface RefundRequest extends GatewayRequestBase {
  transactionId: string;
  amountCents: number;
}

/**
 * A card payment gateway. Each call resolves with a {@linkcode GatewayResult},
 * rejects with {@linkcode GatewayNetworkError} when unreachable, and may never
 * settle at all (callers bound every call with their own deadline and abort it).
 */
export interface PaymentGateway {
  /** Holds `amountCents` on the token's card. */
  authorize(req: AuthorizeRequest, options?: CallOptions): Promise<GatewayResult>;
  /** Charges a held authorization. */
  capture(req: CaptureRequest, options?: CallOptions): Promise<GatewayResult>;
  /** Releases a held authorization. */
  void(req: VoidRequest, options?: CallOptions): Promise<GatewayResult>;
  /** Refunds a captured charge. */
  refund(req: RefundRequest, options?: CallOptions): Promise<GatewayResult>;
}

/** The card reader at the kiosk. */
export interface CardReader {
  /** Whether cards (and wallets) can be taken now. */
  online(): boolean;
  /** Calls `fn` on every change until the returned function is called. */
  onChange(fn: (online: boolean) => void): () => void;
}

/** Why cash is paid out. */
export type PayoutReason = "CHANGE" | "RETURN";

/** One payout of the cash acceptor. */
export interface PayoutRequest {
  /** Derived from the order; a repeated key pays out nothing more. */
  idempotencyKey: string;
  orderId: string;
  amountCents: number;
  why: PayoutReason;
}

/** The bill and coin acceptor with its change dispenser. */
export interface CashAcceptor {
  /** Denominations the hardware can take, in cents. */
  acceptedCents(): readonly number[];
  /**
   * Pays `amountCents` out to the customer.
   *
   * @throws {Error} When the dispenser fails (nothing or not everything was paid).
   */
  payOut(req: PayoutRequest, options?: CallOptions): Promise<void>;
}
