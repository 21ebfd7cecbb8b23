/**
 * Access (admin only): people's tokens and the audit log of what operators
 * did. With PGlite the cloud owns its data folder, so this is how a running
 * cloud gets new tokens; `deno task fleet token add` does the same offline.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import { createSubApp } from "../../api/context.ts";
import { errorResponse } from "../../api/errors.ts";
import { addToken, listTokens, revokeToken, Role } from "../admin/tokens.ts";
import { listAudit } from "../admin/audit.ts";
import { AuditEntry } from "../admin/views.ts";
import { type AdminDeps, adminRoutes, audit, jsonBody, jsonResponse } from "./common.ts";

const TokenInfo = z.object({
  tokenId: z.string(),
  name: z.string(),
  role: Role,
  createdAtMs: z.number().int(),
  lastUsedAtMs: z.number().int().nullable(),
  revoked: z.boolean(),
});

/** Body of `POST /admin/tokens`. */
export const AddTokenBody = z.object({
  role: Role,
  /** Who holds it (default `<role>-<id>`). */
  name: z.string().min(1).max(100).optional(),
});

/** The access sub-app. */
export function accessRoutes(deps: AdminDeps): OpenAPIHono {
  const { db } = deps;
  const app = createSubApp(deps.log);
  const route = adminRoutes(db, "access");

  const addRoute = route("admin", {
    method: "post",
    path: "/api/v1/admin/tokens",
    summary: "Issues a bearer token (shown once)",
    request: { body: jsonBody(AddTokenBody) },
    responses: {
      201: jsonResponse(
        z.object({ tokenId: z.string(), name: z.string(), role: Role, token: z.string() }),
        "The token",
      ),
    },
  });
  app.openapi(addRoute, async (c) => {
    const body = c.req.valid("json");
    const made = await addToken(db, {
      role: body.role,
      ...(body.name ? { name: body.name } : {}),
      random: deps.random,
    });
    await audit(deps, c, "token.add", null, "ok", { tokenId: made.tokenId, role: made.role });
    return c.json(made, 201);
  });

  const listRoute = route("admin", {
    method: "get",
    path: "/api/v1/admin/tokens",
    summary: "Every token (never the token itself)",
    responses: { 200: jsonResponse(z.object({ tokens: z.array(TokenInfo) }), "Tokens") },
  });
  app.openapi(listRoute, async (c) => c.json({ tokens: await listTokens(db) }, 200));

  const revokeRoute = route("admin", {
    method: "delete",
    path: "/api/v1/admin/tokens/{tokenId}",
    summary: "Revokes a token",
    request: { params: z.object({ tokenId: z.string().min(1).max(100) }) },
    responses: { 200: jsonResponse(z.object({ revoked: z.literal(true) }), "Revoked") },
  });
  app.openapi(revokeRoute, async (c) => {
    const { tokenId } = c.req.valid("param");
    if (!(await revokeToken(db, tokenId))) {
      return errorResponse(c, "NOT_FOUND", `No unrevoked token "${tokenId}"`);
    }
    await audit(deps, c, "token.revoke", null, "ok", { tokenId });
    return c.json({ revoked: true as const }, 200);
  });

  const auditRoute = route("admin", {
    method: "get",
    path: "/api/v1/admin/audit",
    summary: "What operators did, newest first",
    request: {
      query: z.object({
        machineId: z.string().min(1).max(200).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      }),
    },
    responses: { 200: jsonResponse(z.object({ entries: z.array(AuditEntry) }), "Entries") },
  });
  app.openapi(auditRoute, async (c) => {
    const q = c.req.valid("query");
    const entries = await listAudit(db, {
      machineId: q.machineId,
      ...(q.limit ? { limit: q.limit } : {}),
    });
    return c.json({ entries }, 200);
  });

  return app;
}
