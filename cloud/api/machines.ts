/**
 * Machines (seed 003 §4.3): the fleet list with connectivity, one machine's
 * status, registering a machine, its maintenance logs, and maintenance mode,
 * which the machine itself must confirm over NATS. Alerts raised during
 * maintenance are muted; those still open when it ends are unmuted and
 * published then.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { MachineId } from "../../protocol/define.ts";
import { MachineStatus } from "../../protocol/entities.ts";
import * as supervisor from "../../protocol/supervisor.ts";
import { MaintenanceBody } from "../../api/control_routes.ts";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { addMachine } from "../db/machines.ts";
import { listMachines, machineDetail } from "../admin/fleet.ts";
import { addMaintenanceLog, listMaintenanceLogs } from "../admin/audit.ts";
import {
  alertColumns,
  type AlertRow,
  alertView,
  fleetAlertOf,
  publishAlerts,
} from "../admin/alerts.ts";
import { MachineDetail, MachineSummary, MaintenanceLog } from "../admin/views.ts";
import {
  type AdminDeps,
  adminRoutes,
  audit,
  identityOf,
  jsonBody,
  jsonResponse,
  machineFailure,
  MachinePath,
  unknownMachine,
} from "./common.ts";

/** Query of `GET /admin/machines`. */
export const MachinesQuery = z.object({
  /** Effective status: OFFLINE for machines not heard from within the timeout. */
  status: MachineStatus.optional(),
  /** Part of the address or name, any case. */
  location: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

/** Body of `POST /admin/machines`. */
export const AddMachineBody = z.object({
  machineId: MachineId,
  name: z.string().min(1).max(100).optional(),
  location: z.object({
    address: z.string().min(1).max(300).optional(),
    latitude: z.number().min(-90).max(90).optional(),
    longitude: z.number().min(-180).max(180).optional(),
  }).optional(),
});

const MaintenanceOutcome = z.object({
  /** The machine is now in the mode asked for. */
  success: z.boolean(),
  machineId: z.string(),
  status: MachineStatus,
  maintenance: z.boolean(),
  reason: z.string().nullable(),
  /** The maintenance log recording the change. */
  logId: z.string(),
});

/** The machines sub-app. */
export function machineRoutes(deps: AdminDeps): OpenAPIHono {
  const { db } = deps;
  const app = createSubApp(deps.log);
  const route = adminRoutes(db, "machines");
  const conn = () => ({ nowMs: deps.clock.now(), offlineAfterMs: deps.offlineAfterMs });

  const listRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/machines",
    summary: "The fleet: status, connectivity, temperatures, stock and open alerts per machine",
    request: { query: MachinesQuery },
    responses: {
      200: jsonResponse(
        z.object({ machines: z.array(MachineSummary), offlineAfterMs: z.number().int() }),
        "Machines by id",
      ),
    },
  });
  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const machines = await listMachines(db, conn(), q);
    return c.json({ machines, offlineAfterMs: deps.offlineAfterMs }, 200);
  });

  const addRoute = route("admin", {
    method: "post",
    path: "/api/v1/admin/machines",
    summary: "Registers a machine and returns its API key (shown once)",
    request: { body: jsonBody(AddMachineBody) },
    responses: {
      201: jsonResponse(
        z.object({ machineId: z.string(), apiKey: z.string() }),
        "Registered; the key is for `Authorization: Bearer` on its /sync",
      ),
    },
  });
  app.openapi(addRoute, async (c) => {
    const body = c.req.valid("json");
    const known = await db.query<{ registered: boolean }>(
      "SELECT registered FROM machines WHERE machine_id = $1",
      [body.machineId],
    );
    if (known[0]?.registered) {
      await audit(deps, c, "machine.add", body.machineId, "CONFLICT");
      return errorResponse(
        c,
        "CONFLICT",
        `Machine "${body.machineId}" is registered already; its key is not shown again`,
      );
    }
    const apiKey = await addMachine(db, body.machineId, {
      ...(body.name ? { name: body.name } : {}),
      ...(body.location?.address ? { locationAddress: body.location.address } : {}),
      ...(body.location?.latitude !== undefined ? { latitude: body.location.latitude } : {}),
      ...(body.location?.longitude !== undefined ? { longitude: body.location.longitude } : {}),
      random: deps.random,
    });
    await audit(deps, c, "machine.add", body.machineId, "ok");
    return c.json({ machineId: body.machineId, apiKey }, 201);
  });

  const statusRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/machine/{machineId}/status",
    summary: "One machine: temperatures, stock, active orders, recent alerts, uptime",
    request: { params: MachinePath },
    responses: { 200: jsonResponse(MachineDetail, "The machine") },
  });
  app.openapi(statusRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const detail = await machineDetail(db, machineId, conn());
    if (!detail) return errorResponse(c, "NOT_FOUND", `Machine "${machineId}" is unknown`);
    return c.json(detail, 200);
  });

  const logsRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/machine/{machineId}/maintenance-logs",
    summary: "The machine's maintenance logs, newest first",
    request: { params: MachinePath },
    responses: { 200: jsonResponse(z.object({ logs: z.array(MaintenanceLog) }), "Logs") },
  });
  app.openapi(logsRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const unknown = await unknownMachine(deps, c, machineId);
    if (unknown) return unknown;
    return c.json({ logs: await listMaintenanceLogs(db, machineId) }, 200);
  });

  const maintenanceRoute = route("technician", {
    method: "post",
    path: "/api/v1/admin/machine/{machineId}/maintenance-mode",
    summary: "Puts the machine in or out of maintenance mode; answers when the machine confirms",
    description: "Sent over NATS to the machine's supervisor; orders in flight finish. " +
      "504 when the machine does not confirm in time, 503 when it is not reachable. " +
      "While in maintenance, the machine's alerts are muted.",
    request: { params: MachinePath, body: jsonBody(MaintenanceBody) },
    responses: { 200: jsonResponse(MaintenanceOutcome, "The machine confirmed") },
  });
  app.openapi(maintenanceRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const { enable, reason } = c.req.valid("json");
    const unknown = await unknownMachine(deps, c, machineId);
    if (unknown) return unknown;
    const what = `maintenance mode ${enable ? "on" : "off"}`;
    if (!deps.bus) {
      await audit(deps, c, "maintenance-mode", machineId, "UNAVAILABLE", { enable, reason });
      return errorResponse(c, "UNAVAILABLE", "The cloud has no NATS connection to machines");
    }
    const r = await deps.bus.request(supervisor.maintenance, { enable, reason }, {
      machineId,
      timeoutMs: deps.commandTimeoutMs,
    });
    if (!r.ok) {
      await audit(deps, c, "maintenance-mode", machineId, r.error.code, { enable, reason });
      return machineFailure(c, deps, machineId, what, r.error);
    }
    const s = r.value;
    // What the machine confirmed counts at once (alerts mute now); its own
    // status event, when ingested, carries the same values.
    await db.query(
      `UPDATE machines SET maintenance = $2, status = $3, status_reason = $4, cash_only = $5,
              updated_at = now()
        WHERE machine_id = $1`,
      [machineId, s.maintenance, s.status, s.reason, s.cashOnly],
    );
    // Leaving maintenance: what is still open after it needs a look, so the
    // alerts muted meanwhile are unmuted and published now.
    if (!s.maintenance) {
      const unmuted = await db.query<AlertRow>(
        `UPDATE alerts a SET muted = false WHERE a.machine_id = $1 AND NOT a.resolved AND a.muted
          RETURNING ${alertColumns}`,
        [machineId],
      );
      publishAlerts(deps.nc, deps.names, unmuted.map((r) => fleetAlertOf(alertView(r))), deps.log);
    }
    const logId = await addMaintenanceLog(db, {
      machineId,
      type: "ROUTINE",
      performedBy: identityOf(c).name,
      description: `Maintenance mode ${s.maintenance ? "on" : "off"}: ${reason}`,
      details: { action: "maintenance-mode", enable, reason, confirmed: s },
      atMs: deps.clock.now(),
      completed: true,
    }, deps.random);
    await audit(deps, c, "maintenance-mode", machineId, "ok", { enable, reason, logId });
    return c.json({
      success: s.maintenance === enable,
      machineId,
      status: s.status,
      maintenance: s.maintenance,
      reason: s.reason,
      logId,
    }, 200);
  });

  return app;
}
