/**
 * The monitor on demand: run a job now, see its past runs, and the restock
 * forecast (seed §6.2) computed for the fleet or one machine.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { listMonitorRuns, monitorJobs } from "../monitor/monitor.ts";
import { predictRestock } from "../monitor/restock.ts";
import { RestockRecommendation } from "../admin/views.ts";
import { type AdminDeps, adminRoutes, audit, jsonResponse, unknownMachine } from "./common.ts";

const Job = z.enum(monitorJobs);

const Run = z.object({
  runId: z.string(),
  job: Job,
  trigger: z.enum(["schedule", "demand"]),
  startedAt: z.number().int(),
  finishedAt: z.number().int(),
  result: z.unknown(),
});

/** The monitor sub-app. */
export function monitorRoutes(deps: AdminDeps): OpenAPIHono {
  const app = createSubApp(deps.log);
  const route = adminRoutes(deps.db, "monitor");

  const runRoute = route("technician", {
    method: "post",
    path: "/api/v1/admin/monitor/{job}/run",
    summary: "Runs a monitoring job now and returns what it found",
    description: "connectivity: offline machines; conditions: storage above 5 °C for 10 min; " +
      "anomalies: seed §6.6; restock: seed §6.2. Alerts it raises are published as usual.",
    request: { params: z.object({ job: Job }) },
    responses: {
      200: jsonResponse(z.object({ job: Job, result: z.unknown() }), "What the job found"),
    },
  });
  app.openapi(runRoute, async (c) => {
    const { job } = c.req.valid("param");
    if (!deps.monitor) return errorResponse(c, "UNAVAILABLE", "The monitor is not running");
    const r = await deps.monitor.run(job, "demand");
    await audit(deps, c, `monitor.${job}`, null, "ok");
    return c.json({ job: r.job, result: r.result as unknown }, 200);
  });

  const runsRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/monitor/runs",
    summary: "Past runs of the monitoring jobs, newest first",
    request: {
      query: z.object({
        job: Job.optional(),
        limit: z.coerce.number().int().min(1).max(500).optional(),
      }),
    },
    responses: { 200: jsonResponse(z.object({ runs: z.array(Run) }), "Runs") },
  });
  app.openapi(runsRoute, async (c) => {
    const q = c.req.valid("query");
    const runs = await listMonitorRuns(deps.db, {
      job: q.job,
      ...(q.limit ? { limit: q.limit } : {}),
    });
    return c.json({ runs }, 200);
  });

  const forecastRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/restock-recommendations",
    summary: "The restock forecast now: pizzas that run out within 7 days, most urgent first",
    request: { query: z.object({ machineId: z.string().min(1).max(200).optional() }) },
    responses: {
      200: jsonResponse(
        z.object({ recommendations: z.array(RestockRecommendation) }),
        "Recommendations",
      ),
    },
  });
  app.openapi(forecastRoute, async (c) => {
    const { machineId } = c.req.valid("query");
    if (machineId !== undefined) {
      const unknown = await unknownMachine(deps, c, machineId);
      if (unknown) return unknown;
    }
    const recommendations = await predictRestock(deps.db, { nowMs: deps.clock.now(), machineId });
    return c.json({ recommendations }, 200);
  });

  return app;
}
