/**
 * The invariants every run is judged by (DESIGN.md, Simulator): money, food
 * safety, machine safety and stock. Some are watched as the run goes (the arm,
 * the oven's temperature, an order's statuses), the rest are checked over the
 * log, the gateway's ledger and the journal at the end. Liveness mode adds:
 * every order ends, money held is released or taken, and the machine is back
 * in service.
 */
import type { Journal } from "../journal/journal.ts";
import type { SimLedger } from "../hardware/sim/payment.ts";
import type { SimPlant } from "../hardware/sim/plant.ts";
import type { SimArm } from "../hardware/sim/arm.ts";
import type { MachineConfig } from "../protocol/config.ts";
import { OVEN_OVER_TEMPERATURE_C } from "../actors/safety/mod.ts";
import type { RunMode } from "./scenario.ts";
import { isTerminal, Observer, type OrderFacts } from "./world/observer.ts";
import type { PhysicalPizza, PhysicalStock } from "./world/physical_stock.ts";
import type { CustomerRecord } from "./world/customers.ts";

/** The invariants by name. */
export const invariantNames = [
  "order-status-legal",
  "one-order-per-request",
  "paid-order-ends",
  "no-double-charge",
  "no-refund-after-dispense",
  "cash-balance",
  "money-settled",
  "cooked-enough",
  "not-expired",
  "oven-limit",
  "arm-safe",
  "stock-balance",
  "every-order-ends",
  "back-in-service",
  "pickup-works",
  "power-loss-clean",
  "run-error",
] as const;
/** An invariant's name. */
export type InvariantName = typeof invariantNames[number];

/** A broken invariant. */
export interface Violation {
  invariant: InvariantName;
  /** Virtual time (epoch ms) when it broke, or when it was found at the end. */
  atMs: number;
  message: string;
  orderId?: string;
}

/** What the checker reads. */
export interface InvariantDeps {
  mode: RunMode;
  config: MachineConfig;
  plant: SimPlant;
  arm: SimArm;
  ledger: SimLedger;
  journal: Journal;
  observer: Observer;
  physical: PhysicalStock;
  /** The stock the run started with (pizzas). */
  startStock: number;
  now(): number;
  /** Schedules a check right after the current instant's work. */
  defer(fn: () => void): void;
}

/** What the world reports at the end of a run. */
export interface FinalState {
  customers: readonly CustomerRecord[];
  /** Pizzas the carousel accepted in restocks. */
  restocked: number;
  /** Orders whose uncollected pizza staff took out of the pickup area (not sold). */
  removedByStaff: ReadonlySet<string>;
  /** Liveness: whether every order ended within the drain, and the probe's outcome. */
  drained: boolean;
  /** What was still open when the drain ran out. */
  openAtEnd: string;
  machineStatus: string | null;
  probe: CustomerRecord | null | "skipped";
}

/** A stretch of virtual time; `toMs` is Infinity while it lasts. */
interface Span {
  fromMs: number;
  toMs: number;
}

/** Tolerance of the physical bake check: two sampling periods. */
const bakeToleranceMs = 2000;
/** The oven's temperature is kept this often for the bake check and the report. */
const ovenSampleMs = 1000;
/** Oven within this of its target counts as baking (the oven's own band). */
const bakeBandC = 10;

/** Watches and checks the invariants of one run. */
export class InvariantChecker {
  readonly violations: Violation[] = [];
  private readonly seen = new Set<string>();
  private readonly samplesT: number[] = [];
  private readonly samplesC: number[] = [];
  private readonly trays = new Map<string, PhysicalPizza | null>();
  private maxOvenC = -Infinity;
  private ovenOver = false;
  private nextOvenSampleMs = -Infinity;
  private checkedServed = new Set<string>();
  /** When the world kept customers away from the pickup area (`customerAbsent`). */
  private readonly absences: Span[] = [];
  /** When the pickup door was open. */
  private readonly doorOpenings: Span[] = [];

  /** Starts watching the plant's signals. */
  constructor(private readonly d: InvariantDeps) {
    const follow = (spans: Span[], on: unknown) => {
      if (on) spans.push({ fromMs: d.now(), toMs: Infinity });
      else if (spans.length > 0) spans[spans.length - 1]!.toMs = d.now();
    };
    if (d.plant.get("customerAbsent")) follow(this.absences, true);
    d.plant.onChange((signal, value) => {
      if (signal === "customerAbsent") follow(this.absences, value);
      if (signal === "pickupDoorOpen") {
        follow(this.doorOpenings, value);
        this.checkArm(`the pickup door opened`);
      } else d.defer(() => this.checkArm(`"${signal}" changed`));
    });
  }

  /**
   * Whether the door opened in [fromMs, toMs] and the world kept customers
   * away while it was open.
   */
  private absentAtOpenDoor(fromMs: number, toMs: number): boolean {
    const overlap = (a: Span, b: Span) => a.fromMs <= b.toMs && a.toMs >= b.fromMs;
    return this.doorOpenings.some((door) =>
      door.fromMs >= fromMs && door.fromMs <= toMs && this.absences.some((a) => overlap(a, door))
    );
  }

  /** Hottest oven temperature, °C. */
  get maxOvenTempC(): number {
    return this.maxOvenC;
  }

  /** Records a violation once per invariant and order (or message). */
  violate(v: Violation): void {
    const key = `${v.invariant}:${v.orderId ?? v.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.violations.push(v);
  }

  /** The first violation in virtual time. */
  first(): Violation | null {
    let best: Violation | null = null;
    for (const v of this.violations) if (!best || v.atMs < best.atMs) best = v;
    return best;
  }

  // ---- machine safety, watched ----

  private unsafe(): string[] {
    const p = this.d.plant;
    const why: string[] = [];
    if (p.get("pickupDoorOpen")) why.push("the pickup door is open");
    if (p.get("armHalt")) why.push("the safety halt output is asserted");
    if (p.get("estop")) why.push("the e-stop is pressed");
    if (p.get("serviceDoorOpen")) why.push("the service door is open");
    if (p.get("smoke")) why.push("smoke is detected");
    return why;
  }

  private checkArm(when: string): void {
    if (!this.d.arm.moving()) return;
    const why = this.unsafe();
    if (why.length === 0) return;
    this.violate({
      invariant: "arm-safe",
      atMs: this.d.now(),
      message: `The arm is moving after ${when}, while ${why.join(" and ")}`,
    });
  }

  /** The controller started an arm move. */
  onArmMove(to: string): void {
    this.checkArm(`starting a move to ${to}`);
  }

  /** The controller drove the pickup door. */
  onDoor(open: boolean): void {
    if (open && this.d.arm.moving()) {
      this.violate({
        invariant: "arm-safe",
        atMs: this.d.now(),
        message: "The pickup door was commanded open while the arm was moving",
      });
    }
  }

  /**
   * The oven's real temperature at the end of one model sub-step: every step
   * counts for the hottest temperature and the limit, one a second is kept
   * for the bake check and the report.
   */
  onOvenStep(atMs: number, tempC: number): void {
    if (tempC > this.maxOvenC) this.maxOvenC = tempC;
    const over = tempC > OVEN_OVER_TEMPERATURE_C;
    if (over && !this.ovenOver) {
      this.violate({
        invariant: "oven-limit",
        atMs,
        message: `The oven reached ${
          tempC.toFixed(1)
        } °C, above its safety limit of ${OVEN_OVER_TEMPERATURE_C} °C`,
      });
    }
    this.ovenOver = over;
    if (atMs < this.nextOvenSampleMs) return;
    this.samplesT.push(atMs);
    this.samplesC.push(tempC);
    this.nextOvenSampleMs = atMs + ovenSampleMs;
  }

  /** Real oven samples (time, °C), for the report. */
  ovenSamples(): { t: number[]; c: number[] } {
    return { t: this.samplesT, c: this.samplesC };
  }

  // ---- orders, watched ----

  /** Called after the observer took an event in. */
  onEvent(atMs: number, key: string, msg: Record<string, unknown>): void {
    if (key === "carousel.retrieved") {
      const orderId = String(msg.orderId);
      if (!this.trays.has(orderId)) {
        this.trays.set(orderId, this.d.physical.tray);
        this.d.physical.tray = null;
      }
      return;
    }
    if (key !== "order.updated") return;
    const order = msg.order as { orderId: string };
    const o = this.d.observer.orders.get(order.orderId);
    if (!o) return;
    this.checkStatuses(o);
    const status = Observer.last(o);
    if (status === "DISPENSED" || status === "READY") this.checkServed(o, atMs);
  }

  private checkStatuses(o: OrderFacts): void {
    const s = o.statuses;
    for (let i = 1; i < s.length; i++) {
      const from = s[i - 1]!;
      const to = s[i]!;
      if (isTerminal(from.status)) {
        this.violate({
          invariant: from.status === "DISPENSED" && to.status === "REFUNDED"
            ? "no-refund-after-dispense"
            : "order-status-legal",
          atMs: to.atMs,
          orderId: o.orderId,
          message:
            `Order ${o.orderId} went from ${from.status} to ${to.status}: an ended order must never change`,
        });
      }
      if (to.status === "DISPENSED" && from.status !== "READY") {
        this.violate({
          invariant: "order-status-legal",
          atMs: to.atMs,
          orderId: o.orderId,
          message: `Order ${o.orderId} became DISPENSED from ${from.status}, not from READY`,
        });
      }
    }
  }

  /** Cooked enough and not expired: checked once an order's pizza is served (READY). */
  private checkServed(o: OrderFacts, atMs: number): void {
    if (this.checkedServed.has(o.orderId)) return;
    this.checkedServed.add(o.orderId);
    const pizza = this.d.config.menu.find((p) => p.pizzaId === o.pizzaId);
    const cooked = o.cooked?.session;
    if (!cooked || cooked.status !== "COMPLETE") {
      this.violate({
        invariant: "cooked-enough",
        atMs,
        orderId: o.orderId,
        message: `Order ${o.orderId} was served without a COMPLETE cooking session`,
      });
    } else if (pizza) {
      if (cooked.targetTemperatureC < pizza.cookingTempC) {
        this.violate({
          invariant: "cooked-enough",
          atMs,
          orderId: o.orderId,
          message:
            `Order ${o.orderId} was baked at ${cooked.targetTemperatureC} °C, below ${pizza.cookingTempC} °C for ${pizza.pizzaId}`,
        });
      }
      const from = cooked.startedAt;
      const to = cooked.completedAt ?? atMs;
      // The session's own claim is exact: it cannot end before its cooking time.
      if (to - from < pizza.cookingTimeMs) {
        this.violate({
          invariant: "cooked-enough",
          atMs,
          orderId: o.orderId,
          message: `Order ${o.orderId} (${pizza.pizzaId}): its session lasted ${
            to - from
          } ms, under its ${pizza.cookingTimeMs} ms`,
        });
      }
      const bakedMs = this.inBandMs(from, to, cooked.targetTemperatureC);
      if (bakedMs + bakeToleranceMs < pizza.cookingTimeMs) {
        this.violate({
          invariant: "cooked-enough",
          atMs,
          orderId: o.orderId,
          message: `Order ${o.orderId} (${pizza.pizzaId}) spent ${
            Math.round(bakedMs / 1000)
          } s within ${bakeBandC} °C of ${cooked.targetTemperatureC} °C, under its ${
            pizza.cookingTimeMs / 1000
          } s`,
        });
      }
      const inOven = o.armMoves.find((m) => m.position === "OVEN");
      const outOfOven = o.armMoves.find((m) => m.position === "PICKUP");
      if (!inOven || inOven.atMs > from || (outOfOven && outOfOven.atMs < to)) {
        this.violate({
          invariant: "cooked-enough",
          atMs,
          orderId: o.orderId,
          message:
            `Order ${o.orderId}: the arm did not hold its pizza in the oven for the whole session (in ${
              inOven?.atMs ?? "never"
            }, session ${from}..${to}, out ${outOfOven?.atMs ?? "never"})`,
        });
      }
    }
    const tray = this.trays.get(o.orderId);
    const retrieved = o.retrieved;
    if (tray === undefined || !retrieved) {
      this.violate({
        invariant: "not-expired",
        atMs,
        orderId: o.orderId,
        message: `Order ${o.orderId} was served but no pizza left storage for it`,
      });
    } else if (tray === null) {
      this.violate({
        invariant: "not-expired",
        atMs,
        orderId: o.orderId,
        message: `Order ${o.orderId} was served from slot ${retrieved.slot}, which was empty`,
      });
    } else if (tray.expiresAt <= retrieved.atMs) {
      this.violate({
        invariant: "not-expired",
        atMs: retrieved.atMs,
        orderId: o.orderId,
        message:
          `Order ${o.orderId} was served a ${tray.pizzaId} from slot ${tray.slot} that expired at ${
            new Date(tray.expiresAt).toISOString()
          }`,
      });
    } else if (tray.pizzaId !== o.pizzaId) {
      this.violate({
        invariant: "not-expired",
        atMs,
        orderId: o.orderId,
        message: `Order ${o.orderId} asked for ${o.pizzaId} and was served a ${tray.pizzaId}`,
      });
    }
  }

  /** Milliseconds in [fromMs, toMs] with the real oven within the band of `targetC`. */
  private inBandMs(fromMs: number, toMs: number, targetC: number): number {
    const t = this.samplesT;
    const c = this.samplesC;
    let lo = 0;
    let hi = t.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (t[mid]! < fromMs) lo = mid + 1;
      else hi = mid;
    }
    let total = 0;
    for (let i = lo; i + 1 < t.length && t[i]! < toMs; i++) {
      const a = t[i]!;
      const b = Math.min(t[i + 1]!, toMs);
      if (Math.abs(c[i]! - targetC) <= bakeBandC) total += b - a;
    }
    return total;
  }

  // ---- at the end ----

  /** Checks what is judged over the whole run; returns every violation. */
  finish(end: FinalState): Violation[] {
    const atMs = this.d.now();
    const { journal, ledger, observer } = this.d;
    const liveness = this.d.mode === "liveness";
    const rows = journal.prepare(
      "SELECT order_id, status, stage, order_json FROM orders ORDER BY rowid",
    ).all() as { order_id: string; status: string; stage: string; order_json: string }[];
    const paidRows = journal.prepare(
      `SELECT DISTINCT order_id FROM payment_ops
        WHERE (op = 'AUTHORIZE' AND result = 'APPROVED') OR op = 'CASH_IN'`,
    ).all() as { order_id: string }[];
    const paid = new Set(paidRows.map((r) => r.order_id));
    const payments = new Map(
      (journal.prepare(
        `SELECT order_id, method, status, amount_cents, inserted_cents, change_cents
           FROM payments ORDER BY order_id, attempt`,
      ).all() as {
        order_id: string;
        method: string;
        status: string;
        amount_cents: number;
        inserted_cents: number;
        change_cents: number;
      }[]).map((r) => [r.order_id, r]),
    );
    const inserted = new Map<string, number>();
    for (const c of end.customers) {
      if (c.orderId) inserted.set(c.orderId, (inserted.get(c.orderId) ?? 0) + c.insertedCents);
    }

    for (const row of rows) {
      const orderId = row.order_id;
      const status = row.status;
      const facts = observer.orders.get(orderId);
      const price = (JSON.parse(row.order_json) as { totalAmountCents: number }).totalAmountCents;
      const auths = ledger.authorizations(orderId);
      const captures = ledger.captures(orderId);
      const voids = ledger.voids(orderId);
      const refunds = ledger.refunds(orderId);
      const payouts = ledger.payouts(orderId);
      const dispensed = status === "DISPENSED" ||
        (facts?.takenAtMs != null && !end.removedByStaff.has(orderId));

      if (auths.length > 1) {
        this.violate({
          invariant: "no-double-charge",
          atMs: auths[1]!.at,
          orderId,
          message: `Order ${orderId} holds ${auths.length} card authorizations`,
        });
      }
      if (captures.length > 1) {
        this.violate({
          invariant: "no-double-charge",
          atMs: captures[1]!.at,
          orderId,
          message: `Order ${orderId} was captured ${captures.length} times`,
        });
      }
      if (voids.length + refunds.length > 1) {
        this.violate({
          invariant: "no-double-charge",
          atMs: [...voids, ...refunds].map((e) => e.at).sort((a, b) => a - b)[1]!,
          orderId,
          message: `Order ${orderId} was voided or refunded ${voids.length + refunds.length} times`,
        });
      }
      if (captures.length > 0 && (voids.length > 0 || refunds.length > 0)) {
        this.violate({
          invariant: dispensed ? "no-refund-after-dispense" : "no-double-charge",
          atMs: Math.max(captures[0]!.at, (voids[0] ?? refunds[0])!.at),
          orderId,
          message: `Order ${orderId} was both captured and ${voids.length ? "voided" : "refunded"}`,
        });
      }
      for (const c of captures) {
        if (c.amountCents !== price) {
          this.violate({
            invariant: "no-double-charge",
            atMs: c.at,
            orderId,
            message: `Order ${orderId} was captured ${c.amountCents} cents, not its price ${price}`,
          });
        }
      }
      if (dispensed) {
        const back = [...voids, ...refunds, ...payouts.filter((p) => p.why === "RETURN")];
        if (back.length > 0) {
          this.violate({
            invariant: "no-refund-after-dispense",
            atMs: back[0]!.at,
            orderId,
            message: `Order ${orderId} was dispensed and its money given back too`,
          });
        }
      }
      if (status === "REFUNDED" && captures.length > 0) {
        this.violate({
          invariant: "paid-order-ends",
          atMs,
          orderId,
          message: `Order ${orderId} is REFUNDED but its card was captured`,
        });
      }
      if (status === "CANCELLED" && paid.has(orderId)) {
        this.violate({
          invariant: "paid-order-ends",
          atMs,
          orderId,
          message: `Order ${orderId} was paid but ended CANCELLED, not REFUNDED or DISPENSED`,
        });
      }

      // Cash: each payout once; nothing credited that was not inserted; the balance holds.
      const p = payments.get(orderId);
      const changes = payouts.filter((x) => x.why === "CHANGE");
      const returns = payouts.filter((x) => x.why === "RETURN");
      if (changes.length > 1 || returns.length > 1) {
        this.violate({
          invariant: "cash-balance",
          atMs: payouts[1]!.at,
          orderId,
          message: `Order ${orderId} paid out cash ${payouts.length} times (${
            payouts.map((x) => `${x.why} ${x.amountCents}`).join(", ")
          })`,
        });
      }
      if (p && p.method === "CASH") {
        const real = inserted.get(orderId) ?? 0;
        if (p.inserted_cents > real) {
          this.violate({
            invariant: "cash-balance",
            atMs,
            orderId,
            message:
              `Order ${orderId} credited ${p.inserted_cents} cents of cash but the customer inserted ${real}`,
          });
        }
        const out = payouts.reduce((s, x) => s + x.amountCents, 0);
        if (status === "DISPENSED" && p.inserted_cents - out !== price) {
          this.violate({
            invariant: "cash-balance",
            atMs,
            orderId,
            message: `Order ${orderId} was dispensed keeping ${
              p.inserted_cents - out
            } cents of cash, not its price ${price}`,
          });
        }
        if (status === "REFUNDED" && out !== p.inserted_cents && liveness) {
          this.violate({
            invariant: "cash-balance",
            atMs,
            orderId,
            message:
              `Order ${orderId} was refunded ${out} cents of the ${p.inserted_cents} cents inserted`,
          });
        }
      }

      if (!liveness) continue;
      if (!isTerminal(status) || row.stage !== "done") {
        this.violate({
          invariant: paid.has(orderId) ? "paid-order-ends" : "every-order-ends",
          atMs,
          orderId,
          message: `Order ${orderId} is still ${status} (stage ${row.stage}) at the end`,
        });
      }
      if (auths.length > 0 && captures.length === 0 && voids.length === 0) {
        this.violate({
          invariant: "money-settled",
          atMs,
          orderId,
          message: `Order ${orderId} (${status}) still holds its card authorization at the end`,
        });
      }
      if (status === "DISPENSED" && p && p.method !== "CASH" && captures.length !== 1) {
        this.violate({
          invariant: "money-settled",
          atMs,
          orderId,
          message: `Order ${orderId} was dispensed with ${captures.length} captures of its card`,
        });
      }
    }

    if (liveness) {
      const owed = journal.prepare(
        "SELECT order_id, op FROM payment_ops WHERE state = 'STARTED' ORDER BY rowid",
      ).all() as { order_id: string; op: string }[];
      for (const op of owed) {
        this.violate({
          invariant: "money-settled",
          atMs,
          orderId: op.order_id,
          message: `Payment operation ${op.op} of order ${op.order_id} is still owed at the end`,
        });
      }
    }

    // A customer at the door with the right code gets the READY pizza.
    if (liveness) {
      const byId = new Map(rows.map((r) => [r.order_id, r]));
      for (const c of end.customers) {
        if (!c.orderId || c.refusedAtMs === null) continue;
        const row = byId.get(c.orderId);
        const reason = row ? (JSON.parse(row.order_json) as { reason?: string }).reason : undefined;
        if (row?.status === "DISPENSED") continue;
        if (row?.status === "REFUNDED" && !/not collected/.test(reason ?? "")) continue;
        // The door did open to the code, but the world kept the customer away
        // from it: the pizza left untaken is the scenario's doing.
        if (
          c.codeAcceptedAtMs !== null &&
          this.absentAtOpenDoor(c.codeAcceptedAtMs, c.leftAtMs ?? atMs)
        ) continue;
        this.violate({
          invariant: "pickup-works",
          atMs: c.refusedAtMs,
          orderId: c.orderId,
          message:
            `Customer ${c.id} entered the right code for READY order ${c.orderId} but never got the pizza (order ${
              row?.status ?? "unknown"
            }${reason ? `: ${reason}` : ""}; ${c.outcome ?? "still waiting"})`,
        });
      }
    }

    // Orders the kiosk saw created but the journal never heard of.
    const journaled = new Set(rows.map((r) => r.order_id));
    for (const c of end.customers) {
      if (c.orderId && !journaled.has(c.orderId)) {
        this.violate({
          invariant: "order-status-legal",
          atMs,
          orderId: c.orderId,
          message: `Order ${c.orderId} was confirmed to the kiosk but is not in the journal`,
        });
      }
    }

    this.checkOneOrderPerRequest(rows, end, atMs);
    this.checkStock(rows, end, atMs);

    if (liveness) {
      if (!end.drained) {
        this.violate({
          invariant: "every-order-ends",
          atMs,
          message: `The run did not settle within the drain time: ${end.openAtEnd || "unknown"}`,
        });
      }
      if (end.machineStatus !== "OPERATIONAL") {
        this.violate({
          invariant: "back-in-service",
          atMs,
          message: `The machine is ${
            end.machineStatus ?? "not answering"
          } at the end, not OPERATIONAL`,
        });
      }
      if (end.probe !== "skipped" && end.probe?.outcome !== "served") {
        this.violate({
          invariant: "back-in-service",
          atMs,
          ...(end.probe?.orderId ? { orderId: end.probe.orderId } : {}),
          message: `A probe customer at the end was not served: ${
            end.probe?.outcome ?? "no outcome"
          }`,
        });
      }
    }
    return this.violations;
  }

  /**
   * Every order comes from one customer's order request, however often the
   * kiosk resent it or the bus duplicated it: no more orders than requests the
   * machine did not refuse outright.
   */
  private checkOneOrderPerRequest(
    rows: { order_id: string }[],
    end: FinalState,
    atMs: number,
  ): void {
    const requests = end.customers.filter((c) => c.orderKey !== null && !c.orderRefused).length;
    if (rows.length <= requests) return;
    const told = new Set(end.customers.map((c) => c.orderId));
    const unknown = rows.map((r) => r.order_id).filter((id) => !told.has(id));
    this.violate({
      invariant: "one-order-per-request",
      atMs,
      message: `${rows.length} orders in the journal from ${requests} order requests: ${
        rows.length - requests
      } made twice (orders no customer was told of: ${unknown.slice(0, 5).join(", ")}${
        unknown.length > 5 ? ", …" : ""
      })`,
    });
  }

  /** stock = start − dispensed − discarded + restocked, in the journal and in the carousel. */
  private checkStock(
    rows: { order_id: string; status: string; stage: string }[],
    end: FinalState,
    atMs: number,
  ): void {
    const { journal } = this.d;
    const inStock = (journal.prepare(
      "SELECT COALESCE(SUM(quantity), 0) AS n FROM carousel_items",
    ).get() as { n: number }).n;
    const discarded = (journal.prepare(
      "SELECT COUNT(*) AS n FROM food_safety_log",
    ).get() as { n: number }).n;
    const dispensed = rows.filter((r) => r.status === "DISPENSED").length;
    const open = new Set(rows.filter((r) => !isTerminal(r.status)).map((r) => r.order_id));
    // Pizzas out of storage for orders still under way are neither sold nor lost
    // yet; in safety mode neither is one still being ejected (a dead controller's
    // write-off may wait for it). In liveness mode that would be a dangling retrieval.
    const safety = this.d.mode === "safety";
    const underWay = (journal.prepare(
      "SELECT order_id, status FROM carousel_reservations WHERE status IN ('RETRIEVING', 'DONE')",
    ).all() as { order_id: string; status: string }[])
      .filter((r) => (safety && r.status === "RETRIEVING") || open.has(r.order_id)).length;
    const expected = this.d.startStock - dispensed - discarded + end.restocked;
    const missing = expected - underWay - inStock;
    if (missing !== 0) {
      const lost = rows.filter((r) => {
        const o = this.d.observer.orders.get(r.order_id);
        return r.status === "REFUNDED" && o?.retrieved;
      }).map((r) => r.order_id);
      this.violate({
        invariant: "stock-balance",
        atMs,
        message:
          `Stock is ${inStock} but start ${this.d.startStock} − dispensed ${dispensed} − discarded ${discarded} + restocked ${end.restocked}${
            underWay ? ` − under way ${underWay}` : ""
          } = ${expected - underWay}: ${
            missing > 0
              ? `${missing} pizza(s) left storage unaccounted${
                lost.length
                  ? ` (refunded after retrieval: ${lost.slice(0, 5).join(", ")}${
                    lost.length > 5 ? ", …" : ""
                  })`
                  : ""
              }`
              : `${-missing} pizza(s) too many`
          }`,
      });
    }
    // The controller never counts a pizza that is not physically there.
    const bySlot = journal.prepare(
      "SELECT storage_slot AS slot, SUM(quantity) AS n FROM carousel_items GROUP BY storage_slot",
    ).all() as { slot: number; n: number }[];
    for (const { slot, n } of bySlot) {
      const real = this.d.physical.count(slot);
      if (n > real) {
        this.violate({
          invariant: "stock-balance",
          atMs,
          message: `The journal counts ${n} pizza(s) in slot ${slot}, but ${real} are there`,
        });
      }
    }
  }
}
