/**
 * Price and menu changes as the device shadow: the cloud holds each machine's
 * desired config version, the machine reports the version it runs (heartbeats,
 * `/sync`), and the two are shown side by side. A change is a conditional
 * write: it names the desired `seq` it was made from, and loses with 409 to a
 * change made meanwhile. Machines on `/sync` get the new version in their
 * next sync response (`new_config`).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { MachineConfig } from "../../protocol/config.ts";
import { applyConfig } from "../../protocol/sync.ts";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { ConfigConflictError, ConfigItem, putDesiredConfig } from "../db/machines.ts";
import { configShadow } from "../admin/fleet.ts";
import { ConfigShadow } from "../admin/views.ts";
import {
  type AdminDeps,
  adminRoutes,
  audit,
  identityOf,
  jsonBody,
  jsonResponse,
  MachinePath,
  unknownMachine,
} from "./common.ts";

/** Body of `PUT /admin/machine/{machineId}/config`. */
export const PutConfigBody = z.object({
  /** The desired `seq` this change was made from (0 when none was desired). */
  expectedSeq: z.number().int().nonnegative(),
  /** A version name not used on this machine before, e.g. `v1.3`. */
  version: z.string().min(1).max(40),
  /** What the machine sells, at what price (cents), how many (seed 000 `new_config`). */
  items: z.array(ConfigItem).max(500).refine(
    (items) => new Set(items.map((i) => i.itemId)).size === items.length,
    "must not name an itemId twice",
  ),
  /** For Fornax controllers: the full config; its `version` must equal `version`. */
  config: MachineConfig.optional(),
}).refine((b) => b.config === undefined || b.config.version === b.version, {
  path: ["config", "version"],
  message: "must equal version",
});

/** The config sub-app. */
export function configRoutes(deps: AdminDeps): OpenAPIHono {
  const { db } = deps;
  const app = createSubApp(deps.log);
  const route = adminRoutes(db, "config");

  const getRoute = route("viewer", {
    method: "get",
    path: "/api/v1/admin/machine/{machineId}/config",
    summary: "The machine's config: desired by the cloud and reported by the machine",
    request: { params: MachinePath },
    responses: { 200: jsonResponse(ConfigShadow, "The config shadow") },
  });
  app.openapi(getRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const shadow = await configShadow(db, machineId);
    if (!shadow) return errorResponse(c, "NOT_FOUND", `Machine "${machineId}" is unknown`);
    return c.json(shadow, 200);
  });

  const putRoute = route("admin", {
    method: "put",
    path: "/api/v1/admin/machine/{machineId}/config",
    summary: "Makes a new config version desired (prices, menu); 409 when another came first",
    request: { params: MachinePath, body: jsonBody(PutConfigBody) },
    responses: { 200: jsonResponse(ConfigShadow, "The config shadow after the change") },
  });
  app.openapi(putRoute, async (c) => {
    const { machineId } = c.req.valid("param");
    const body = c.req.valid("json");
    const unknown = await unknownMachine(deps, c, machineId);
    if (unknown) return unknown;
    try {
      await putDesiredConfig(db, machineId, {
        version: body.version,
        items: body.items,
        ...(body.config ? { config: body.config } : {}),
        createdBy: identityOf(c).name,
      }, body.expectedSeq);
    } catch (err) {
      if (!(err instanceof ConfigConflictError)) throw err;
      await audit(deps, c, "config.put", machineId, "CONFLICT", {
        version: body.version,
        expectedSeq: body.expectedSeq,
      });
      return errorResponse(c, "CONFLICT", err.message);
    }
    if (body.config) {
      // The cloud judges low stock by the threshold the machine will run with.
      await db.query("UPDATE machines SET low_stock_threshold = $2 WHERE machine_id = $1", [
        machineId,
        body.config.lowStockThreshold,
      ]);
    }
    // A Fornax controller on NATS gets the config pushed now; one that does not
    // answer picks the desired version up through /sync, and the shadow shows
    // which version it reports either way.
    const pushed = body.config && deps.bus
      ? await deps.bus.request(applyConfig, { config: body.config }, {
        machineId,
        timeoutMs: deps.commandTimeoutMs,
      })
      : null;
    await audit(deps, c, "config.put", machineId, "ok", {
      version: body.version,
      expectedSeq: body.expectedSeq,
      items: body.items.length,
      pushed: pushed === null ? "not pushed" : pushed.ok ? "applied" : pushed.error.message,
    });
    return c.json((await configShadow(db, machineId))!, 200);
  });

  return app;
}
