/**
 * `GET /api/v1/admin/analytics` (seed 003 §4.3): orders, revenue, order time,
 * best sellers and uptime over a date range, fleet-wide or for one machine.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { analytics } from "../admin/analytics.ts";
import { Analytics } from "../admin/views.ts";
import { type AdminDeps, adminRoutes, jsonResponse, unknownMachine } from "./common.ts";

const dayMs = 24 * 60 * 60_000;
/** The longest range one request may cover. */
export const maxRangeDays = 400;

const DateOrInstant = z.union([z.iso.date(), z.iso.datetime({ offset: true })], {
  error: "must be an ISO date (2030-01-31) or date-time (2030-01-31T12:00:00Z)",
});

/** Query of the analytics: a date alone is a whole UTC day (`endDate` included). */
export const AnalyticsQuery = z.object({
  startDate: DateOrInstant,
  endDate: DateOrInstant,
  machineId: z.string().min(1).max(200).optional(),
});

/** `startDate` and `endDate` as [start, end) epoch ms: an end date alone includes its day. */
export function rangeOf(q: { startDate: string; endDate: string }): [number, number] {
  const start = Date.parse(q.startDate);
  const end = Date.parse(q.endDate) + (q.endDate.length === 10 ? dayMs : 0);
  return [start, end];
}

/** The analytics sub-app. */
export function analyticsRoutes(deps: AdminDeps): OpenAPIHono {
  const app = createSubApp(deps.log);
  const route = adminRoutes(deps.db, "analytics");

  const analyticsRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/analytics",
    summary: "Orders, revenue, order time, best sellers and uptime over a range",
    description: "Sales reported through /sync count as orders. Revenue in cents.",
    request: { query: AnalyticsQuery },
    responses: { 200: jsonResponse(Analytics, "The figures") },
  });
  app.openapi(analyticsRoute, async (c) => {
    const q = c.req.valid("query");
    const [startMs, endMs] = rangeOf(q);
    if (endMs <= startMs) {
      return errorResponse(c, "BAD_REQUEST", "endDate: must not be before startDate");
    }
    if (endMs - startMs > maxRangeDays * dayMs) {
      return errorResponse(c, "BAD_REQUEST", `endDate: range must be at most ${maxRangeDays} days`);
    }
    if (q.machineId !== undefined) {
      const unknown = await unknownMachine(deps, c, q.machineId);
      if (unknown) return unknown;
    }
    return c.json(
      await analytics(deps.db, { startMs, endMs, machineId: q.machineId, nowMs: deps.clock.now() }),
      200,
    );
  });

  return app;
}
