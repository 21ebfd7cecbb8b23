/**
 * Sales analytics over a time range (seed 003 §4.3 `GET /admin/analytics`).
 * An order counts when it was dispensed (placed within the range); a sale a
 * machine reported through `/sync` counts as an order too (seed 000's
 * machines know no orders, only sales). Revenue in integer cents.
 */
import type { Queryable } from "../db/database.ts";
import { itemNames } from "./fleet.ts";
import { at } from "./sql.ts";
import { uptimeByMachine } from "./uptime.ts";
import type { Analytics } from "./views.ts";

/** What {@linkcode analytics} is asked. */
export interface AnalyticsQuery {
  startMs: number;
  /** Exclusive. */
  endMs: number;
  machineId?: string | undefined;
  nowMs: number;
}

/** The analytics of `q`. */
export async function analytics(db: Queryable, q: AnalyticsQuery): Promise<Analytics> {
  const params: unknown[] = [q.startMs, q.endMs];
  let only = "";
  if (q.machineId !== undefined) {
    params.push(q.machineId);
    only = "AND machine_id = $3";
  }
  const sold = `WITH sold AS (
      SELECT machine_id, pizza_id AS item_id, total_amount_cents AS cents, 'controller' AS src,
             (extract(epoch FROM dispensed_at - placed_at) * 1000)::float8 AS took_ms
        FROM orders
       WHERE status = 'DISPENSED' AND placed_at >= ${at("$1")} AND placed_at < ${at("$2")} ${only}
      UNION ALL
      SELECT machine_id, item_id, price_cents, 'sync', NULL
        FROM sales
       WHERE order_id IS NULL AND sold_at >= ${at("$1")} AND sold_at < ${at("$2")} ${only})`;
  const totals = await db.query<{
    n: number;
    controller: number;
    sync: number;
    cents: number;
    avg_ms: number | null;
  }>(
    `${sold}
     SELECT count(*)::int AS n,
            count(*) FILTER (WHERE src = 'controller')::int AS controller,
            count(*) FILTER (WHERE src = 'sync')::int AS sync,
            coalesce(sum(cents), 0)::float8 AS cents, avg(took_ms)::float8 AS avg_ms
       FROM sold`,
    params,
  );
  const popular = await db.query<{ item_id: string; n: number; cents: number; machines: string[] }>(
    `${sold}
     SELECT item_id, count(*)::int AS n, sum(cents)::float8 AS cents,
            array_agg(DISTINCT machine_id) AS machines
       FROM sold GROUP BY item_id ORDER BY n DESC, item_id LIMIT 10`,
    params,
  );
  const names = await itemNames(db, [...new Set(popular.flatMap((p) => p.machines))]);
  const t = totals[0]!;
  const uptime = await uptimeByMachine(
    db,
    q.machineId === undefined ? null : [q.machineId],
    q.startMs,
    q.endMs,
    q.nowMs,
  );
  return {
    startDate: new Date(q.startMs).toISOString(),
    endDate: new Date(q.endMs).toISOString(),
    machineId: q.machineId ?? null,
    totalOrders: t.n,
    ordersBySource: { controller: t.controller, sync: t.sync },
    revenueCents: Math.round(t.cents),
    averageOrderTimeMs: t.avg_ms === null ? null : Math.round(t.avg_ms),
    popularPizzas: popular.map((p) => ({
      pizzaId: p.item_id,
      pizzaName: p.machines.map((m) => names(m, p.item_id)).find((n) => n !== null) ?? null,
      orders: p.n,
      revenueCents: Math.round(p.cents),
    })),
    machineUptime: uptime,
  };
}
