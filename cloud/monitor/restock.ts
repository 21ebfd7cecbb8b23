/**
 * Predictive restock (seed 003 §6.2): from each machine's sales of the last
 * 30 days (dispensed orders, and sales reported through `/sync`), the daily
 * average per pizza; with the current sellable stock, the days until it runs
 * out. A pizza that runs out within `daysAhead` (7) gets a recommendation of
 * two weeks' supply, urgent (HIGH) when under 3 days, else MEDIUM.
 *
 * The average divides by the days of history the machine has (at most 30), so
 * a machine that started selling last week is not thought to sell a quarter
 * of what it does. A pizza without sales in the window gets none.
 */
import type { Random } from "../../random/random.ts";
import type { FleetAlert } from "../../protocol/fleet.ts";
import type { Queryable } from "../db/database.ts";
import { raiseCloudAlert } from "../admin/alerts.ts";
import { itemNames } from "../admin/fleet.ts";
import { at, ms } from "../admin/sql.ts";
import type { RestockRecommendation } from "../admin/views.ts";

export type { RestockRecommendation } from "../admin/views.ts";

/** Parameters of the forecast. */
export interface RestockOptions {
  /** Days of sales history (default 30). */
  historyDays: number;
  /** Recommend when a pizza runs out within this many days (default 7). */
  daysAhead: number;
  /** Days of supply to recommend (default 14). */
  supplyDays: number;
  /** Under this many days the recommendation is HIGH (default 3). */
  urgentDays: number;
}

/** The seed's parameters. */
export const defaultRestockOptions: RestockOptions = {
  historyDays: 30,
  daysAhead: 7,
  supplyDays: 14,
  urgentDays: 3,
};

const dayMs = 24 * 60 * 60_000;

/** Recommendations for every machine (or `machineId`), most urgent first. */
export async function predictRestock(
  db: Queryable,
  options: { nowMs: number; machineId?: string | undefined } & Partial<RestockOptions>,
): Promise<RestockRecommendation[]> {
  const o = { ...defaultRestockOptions, ...options };
  const fromMs = options.nowMs - o.historyDays * dayMs;
  const params: unknown[] = [fromMs, options.nowMs];
  let only = "";
  if (options.machineId !== undefined) {
    params.push(options.machineId);
    only = "AND machine_id = $3";
  }
  const rows = await db.query<{
    machine_id: string;
    item_id: string;
    sold: number;
    history_from_ms: number;
    qty: number | null;
  }>(
    `WITH sold AS (
       SELECT machine_id, pizza_id AS item_id, placed_at AS at FROM orders
        WHERE status = 'DISPENSED' AND placed_at >= ${at("$1")} AND placed_at < ${at("$2")} ${only}
       UNION ALL
       SELECT machine_id, item_id, sold_at FROM sales
        WHERE order_id IS NULL AND sold_at >= ${at("$1")} AND sold_at < ${at("$2")} ${only}),
     per_item AS (SELECT machine_id, item_id, count(*)::int AS sold FROM sold GROUP BY 1, 2),
     first_sale AS (SELECT machine_id, min(at) AS first_at FROM sold GROUP BY 1)
     SELECT p.machine_id, p.item_id, p.sold, l.quantity AS qty,
            ${ms(`GREATEST(${at("$1")}, LEAST(m.created_at, f.first_at))`)} AS history_from_ms
       FROM per_item p
       JOIN first_sale f ON f.machine_id = p.machine_id
       JOIN machines m ON m.machine_id = p.machine_id
       LEFT JOIN inventory_levels l ON l.machine_id = p.machine_id AND l.item_id = p.item_id
      ORDER BY p.machine_id, p.item_id`,
    params,
  );
  const names = await itemNames(db, [...new Set(rows.map((r) => r.machine_id))]);
  const out: RestockRecommendation[] = [];
  for (const r of rows) {
    // Whole days, as the seed's daily history counts them.
    const days = Math.min(
      o.historyDays,
      Math.max(1, Math.ceil((options.nowMs - r.history_from_ms) / dayMs)),
    );
    const dailyAverage = r.sold / days;
    const currentQty = r.qty ?? 0;
    const daysUntilEmpty = currentQty / dailyAverage;
    if (daysUntilEmpty >= o.daysAhead) continue;
    out.push({
      machineId: r.machine_id,
      pizzaId: r.item_id,
      pizzaName: names(r.machine_id, r.item_id),
      currentQty,
      dailyAverage: Math.round(dailyAverage * 100) / 100,
      daysUntilEmpty: Math.round(daysUntilEmpty * 10) / 10,
      recommendedQty: Math.max(1, Math.floor(dailyAverage * o.supplyDays)),
      urgency: daysUntilEmpty < o.urgentDays ? "HIGH" : "MEDIUM",
    });
  }
  return out.sort((a, b) =>
    a.daysUntilEmpty - b.daysUntilEmpty ||
    (a.machineId < b.machineId ? -1 : a.machineId > b.machineId ? 1 : 0) ||
    (a.pizzaId < b.pizzaId ? -1 : 1)
  );
}

/**
 * Raises one LOW_INVENTORY alert per machine with HIGH recommendations (the
 * type machines raise for low stock, so the two share one open alert).
 * Returns the alerts that opened.
 */
export async function raiseRestockAlerts(
  db: Queryable,
  recommendations: readonly RestockRecommendation[],
  nowMs: number,
  random?: Random,
): Promise<FleetAlert[]> {
  const urgent = new Map<string, RestockRecommendation[]>();
  for (const r of recommendations) {
    if (r.urgency !== "HIGH") continue;
    urgent.set(r.machineId, [...(urgent.get(r.machineId) ?? []), r]);
  }
  const opened: FleetAlert[] = [];
  for (const [machineId, items] of [...urgent].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const list = items.map((i) =>
      `${i.pizzaId} (${i.currentQty} left, ~${i.daysUntilEmpty} days, restock ${i.recommendedQty})`
    ).join(", ");
    const alert = await raiseCloudAlert(db, {
      machineId,
      type: "LOW_INVENTORY",
      severity: "WARNING",
      component: "carousel",
      message: `Runs out within days: ${list}`,
      atMs: nowMs,
    }, random);
    if (alert) opened.push(alert);
  }
  return opened;
}
