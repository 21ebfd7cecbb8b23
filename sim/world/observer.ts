/**
 * What the world sees of a run: every order's life as the controller
 * published it, the payments, the oven's sessions and temperatures, the stock,
 * the faults. The invariants, the summary and the report read these facts.
 */
import type { CookingSession, Payment } from "../../protocol/entities.ts";

/** A status an order entered, and when. */
export interface StatusAt {
  status: string;
  atMs: number;
}

/** Everything known of one order. */
export interface OrderFacts {
  orderId: string;
  pizzaId: string | null;
  amountCents: number | null;
  placedAtMs: number | null;
  statuses: StatusAt[];
  /** The latest payment the controller published for it. */
  payment: Payment | null;
  /** Whether a payment of it was ever AUTHORIZED (money held or escrowed). */
  everAuthorized: boolean;
  cashOuts: { why: string; amountCents: number; atMs: number }[];
  retrieved: { atMs: number; slot: number; itemId: string } | null;
  armMoves: { position: string; atMs: number }[];
  takenAtMs: number | null;
  cooked: { atMs: number; session: CookingSession } | null;
  reason: string | null;
}

/** One sample of a numeric series. */
export interface Sample {
  atMs: number;
  value: number;
}

/** A fault or alert the run saw. */
export interface SeenFault {
  atMs: number;
  kind: string;
  detail: string;
}

const terminal = new Set(["DISPENSED", "CANCELLED", "REFUNDED"]);

/** True for statuses an order never leaves. */
export function isTerminal(status: string | null | undefined): boolean {
  return status !== null && status !== undefined && terminal.has(status);
}

/** Facts gathered from the bus and the world during a run. */
export class Observer {
  readonly orders = new Map<string, OrderFacts>();
  /** Oven temperature as published (see `oven.temperature`) with its target. */
  readonly ovenPublished: { atMs: number; tempC: number; targetC: number; state: string }[] = [];
  /** Stock in storage (sum of item quantities) and sellable total, on every change. */
  readonly stock: { atMs: number; items: number; available: number }[] = [];
  readonly faults: SeenFault[] = [];
  readonly alerts = new Map<string, number>();
  readonly discards: { atMs: number; reason: string; slot: number; itemId: string }[] = [];
  /** Machine status as the supervisor published it. */
  readonly machine: { atMs: number; status: string; reason: string | null }[] = [];
  /** Events that ended with a payment capture or a refund per order, from the bus. */
  messages = 0;

  /** The order `orderId`, created on first sight. */
  order(orderId: string): OrderFacts {
    let o = this.orders.get(orderId);
    if (!o) {
      o = {
        orderId,
        pizzaId: null,
        amountCents: null,
        placedAtMs: null,
        statuses: [],
        payment: null,
        everAuthorized: false,
        cashOuts: [],
        retrieved: null,
        armMoves: [],
        takenAtMs: null,
        cooked: null,
        reason: null,
      };
      this.orders.set(orderId, o);
    }
    return o;
  }

  /** The last status the controller published for `o`. */
  static last(o: OrderFacts): string | null {
    return o.statuses.at(-1)?.status ?? null;
  }

  /** Records a fault or alert. */
  fault(atMs: number, kind: string, detail: string): void {
    this.faults.push({ atMs, kind, detail });
  }

  /**
   * Reads one published event (`component.name` of the subject) with its
   * decoded message; returns what changed for the online invariants.
   */
  onEvent(atMs: number, key: string, msg: Record<string, unknown>): void {
    this.messages++;
    switch (key) {
      case "order.updated": {
        const v = msg.order as Record<string, unknown>;
        const o = this.order(String(v.orderId));
        o.pizzaId = String(v.pizzaId);
        o.amountCents = Number(v.totalAmountCents);
        o.placedAtMs = Number(v.placedAt);
        if (typeof v.reason === "string") o.reason = v.reason;
        const status = String(v.status);
        if (Observer.last(o) !== status) o.statuses.push({ status, atMs });
        if (v.payment) this.payment(o, v.payment as Payment);
        break;
      }
      case "payment.changed":
        this.payment(this.order(String((msg.payment as Payment).orderId)), msg.payment as Payment);
        break;
      case "payment.cash_out":
        this.order(String(msg.orderId)).cashOuts.push({
          why: String(msg.why),
          amountCents: Number(msg.amountCents),
          atMs,
        });
        break;
      case "oven.cooked":
        this.order(String(msg.orderId)).cooked = {
          atMs,
          session: msg.session as CookingSession,
        };
        break;
      case "oven.temperature":
        this.ovenPublished.push({
          atMs,
          tempC: Number(msg.temperatureC),
          targetC: Number(msg.targetC),
          state: String(msg.state),
        });
        break;
      case "oven.fault":
        this.fault(atMs, "oven.fault", `${msg.code}: ${msg.message}`);
        break;
      case "arm.moved":
        this.order(String(msg.orderId)).armMoves.push({ position: String(msg.position), atMs });
        break;
      case "arm.taken":
        this.order(String(msg.orderId)).takenAtMs ??= atMs;
        break;
      case "arm.fault":
        this.fault(atMs, "arm.fault", `${msg.code}: ${msg.message}`);
        break;
      case "carousel.retrieved":
        this.order(String(msg.orderId)).retrieved ??= {
          atMs,
          slot: Number(msg.storageSlot),
          itemId: String(msg.itemId),
        };
        break;
      case "carousel.discarded":
        this.discards.push({
          atMs,
          reason: String(msg.reason),
          slot: Number(msg.storageSlot),
          itemId: String(msg.itemId),
        });
        break;
      case "carousel.changed": {
        const inv = msg.inventory as {
          items: { quantity: number }[];
          available: Record<string, number>;
        };
        const items = inv.items.reduce((s, i) => s + i.quantity, 0);
        const available = Object.values(inv.available).reduce((s, n) => s + n, 0);
        const last = this.stock.at(-1);
        if (!last || last.items !== items || last.available !== available) {
          this.stock.push({ atMs, items, available });
        }
        break;
      }
      case "carousel.sales":
        if (msg.stopped) this.fault(atMs, "sales.stopped", String(msg.reason));
        break;
      case "safety.tripped":
        this.fault(atMs, "safety.tripped", (msg.causes as string[]).join(", ") || "unknown");
        break;
      case "supervisor.machine": {
        const status = String(msg.status);
        const last = this.machine.at(-1);
        if (!last || last.status !== status) {
          this.machine.push({ atMs, status, reason: (msg.reason as string | null) ?? null });
        }
        break;
      }
      case "plant.changed":
        if (
          msg.value && !["pickupDoorOpen", "heaterPowerCut", "armHalt"].includes(
            String(msg.signal),
          )
        ) this.fault(atMs, "plant", String(msg.signal));
        break;
      default:
        if (key.endsWith(".alert") && msg.resolved === false) {
          const type = String(msg.type);
          this.alerts.set(type, (this.alerts.get(type) ?? 0) + 1);
        }
    }
  }

  private payment(o: OrderFacts, p: Payment): void {
    o.payment = p;
    if (p.status === "AUTHORIZED" || p.status === "COMPLETED") o.everAuthorized = true;
  }
}
