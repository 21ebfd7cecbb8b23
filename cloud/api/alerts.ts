/**
 * Alerts: the list (open by default, latest first) and resolving one. A
 * resolved alert is published on `fleet.alerts.<severity>` too, so
 * supervisors see it close; the next occurrence opens a new alert.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { AlertSeverity } from "../../protocol/entities.ts";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { fleetAlertOf, listAlerts, publishAlerts, resolveAlertById } from "../admin/alerts.ts";
import { AlertView } from "../admin/views.ts";
import {
  type AdminDeps,
  adminRoutes,
  audit,
  identityOf,
  jsonBody,
  jsonResponse,
} from "./common.ts";

/** Query of `GET /admin/alerts`. */
export const AlertsQuery = z.object({
  machineId: z.string().min(1).max(200).optional(),
  /** Open (default), resolved, or all. */
  status: z.enum(["open", "resolved", "all"]).optional(),
  severity: AlertSeverity.optional(),
  type: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

/** Body of `POST /admin/alerts/{alertId}/resolve` (optional). */
export const ResolveBody = z.object({ note: z.string().max(500).optional() });

/** The alerts sub-app. */
export function alertRoutes(deps: AdminDeps): OpenAPIHono {
  const { db } = deps;
  const app = createSubApp(deps.log);
  const route = adminRoutes(db, "alerts");

  const listRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/alerts",
    summary: "Alerts, latest first: one per machine and type while open, with its count",
    request: { query: AlertsQuery },
    responses: { 200: jsonResponse(z.object({ alerts: z.array(AlertView) }), "Alerts") },
  });
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const status = q.status ?? "open";
    const alerts = await listAlerts(db, {
      machineId: q.machineId,
      resolved: status === "all" ? undefined : status === "resolved",
      severity: q.severity,
      type: q.type,
      limit: q.limit,
    });
    return c.json({ alerts }, 200);
  });

  const resolveRoute = route("technician", {
    method: "post",
    path: "/api/v1/admin/alerts/{alertId}/resolve",
    summary: "Resolves an open alert",
    request: {
      params: z.object({ alertId: z.string().min(1).max(200) }),
      body: jsonBody(ResolveBody, false),
    },
    responses: { 200: jsonResponse(AlertView, "The resolved alert") },
  });
  app.openapi(resolveRoute, async (c) => {
    const { alertId } = c.req.valid("param");
    const note = c.req.valid("json")?.note;
    const by = identityOf(c).name;
    const outcome = await resolveAlertById(db, alertId, by, deps.clock.now());
    if (!outcome.ok) {
      const machineId = outcome.alert?.machineId ?? null;
      if (outcome.reason === "not_found") {
        return errorResponse(c, "NOT_FOUND", `Alert "${alertId}" is unknown`);
      }
      await audit(deps, c, "alert.resolve", machineId, "CONFLICT", { alertId });
      return errorResponse(
        c,
        "CONFLICT",
        `Alert "${alertId}" was resolved already by "${outcome.alert?.resolvedBy}"`,
      );
    }
    const a = outcome.alert;
    if (!a.muted) publishAlerts(deps.nc, deps.names, [fleetAlertOf(a)], deps.log);
    await audit(deps, c, "alert.resolve", a.machineId, "ok", {
      alertId,
      type: a.type,
      ...(note ? { note } : {}),
    });
    return c.json(a, 200);
  });

  return app;
}
