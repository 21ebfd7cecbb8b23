/**
 * What every sub-app of the admin API shares: its dependencies, the bearer
 * token check with roles, the route declarer, and the audit of actions.
 */
import type { Context, MiddlewareHandler } from "hono";
import { createRoute, type RouteConfig } from "@hono/zod-openapi";
import { z } from "zod";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Clock } from "../../clock/clock.ts";
import type { TypedBus } from "../../bus/typed_bus.ts";
import type { Logger } from "../../log/log.ts";
import type { Random } from "../../random/random.ts";
import type { FleetNames } from "../../protocol/fleet.ts";
import type { ReplyError } from "../../protocol/define.ts";
import { ErrorBody, errorResponse } from "../../api/errors.ts";
import type { Database } from "../db/database.ts";
import { checkToken, type Role, roleAllows, type TokenIdentity } from "../admin/tokens.ts";
import { recordAudit } from "../admin/audit.ts";
import { machineExists } from "../admin/fleet.ts";
import type { Monitor } from "../monitor/monitor.ts";

/** What the admin API needs. */
export interface AdminDeps {
  db: Database;
  /** Commands to machines (maintenance, restock); null when the cloud has no NATS. */
  bus: TypedBus | null;
  /** Where alerts are published; null publishes nothing. */
  nc: NatsConnection | null;
  names: FleetNames;
  clock: Clock;
  log: Logger;
  random: Random;
  /** Quiet this long is offline. */
  offlineAfterMs: number;
  /** How long a machine has to confirm a command, in clock ms. */
  commandTimeoutMs: number;
  /** The monitor whose jobs run on demand; null without one. */
  monitor: Monitor | null;
}

/** The OpenAPI security scheme name of people's bearer tokens. */
export const adminScheme = "adminToken";

const identities = new WeakMap<Request, TokenIdentity>();

/** Who made the request (set by {@linkcode requireRole}). */
export function identityOf(c: Context): TokenIdentity {
  const who = identities.get(c.req.raw);
  if (!who) throw new Error("Route has no requireRole middleware");
  return who;
}

/**
 * Lets a request through only with a valid token of at least `role`: missing
 * or unknown is 401, too weak is 403, before the request is validated or
 * anything is read or changed.
 */
export function requireRole(db: Database, role: Role): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      return errorResponse(c, "UNAUTHORIZED", 'Authorization: "Bearer <token>" is required');
    }
    const who = await checkToken(db, match[1]!);
    if (!who) return errorResponse(c, "UNAUTHORIZED", "Token is unknown, revoked or expired");
    if (!roleAllows(who.role, role)) {
      return errorResponse(
        c,
        "FORBIDDEN",
        `This needs the ${role} role; token "${who.name}" has the ${who.role} role`,
      );
    }
    identities.set(c.req.raw, who);
    await next();
  };
}

/** The `default` response of every admin route. */
const errorDefault = {
  description: "Error: 400 invalid body, path or query (names the field); 401 token missing, " +
    "unknown or revoked; 403 token's role too weak; 404 unknown machine or alert; 409 stale " +
    "config version or state conflict; 503 machine not reachable over NATS; 504 machine did " +
    "not confirm in time",
  content: { "application/json": { schema: ErrorBody } },
};

/** A route as a sub-app declares it, with the role it needs. */
export type AdminRouteSpec = Omit<RouteConfig, "tags" | "security" | "middleware">;

/**
 * The route declarer of one sub-app: every route carries the sub-app's tag,
 * the token scheme, the role check as its first middleware, and the one
 * error body for statuses it does not list.
 */
export function adminRoutes(db: Database, tag: string) {
  return <const R extends AdminRouteSpec>(role: Role, route: R) =>
    createRoute({
      ...route,
      tags: [tag],
      security: [{ [adminScheme]: [] }],
      description: `${route.description ?? ""}${route.description ? " " : ""}Role: ${role}.`,
      middleware: [requireRole(db, role)] as const,
      responses: { ...route.responses, default: errorDefault },
    });
}

/** A JSON response of `schema` in a route's `responses`. */
export function jsonResponse<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A JSON request body of `schema`. */
export function jsonBody<S extends z.ZodType>(schema: S, required = true) {
  return { required, content: { "application/json": { schema } } };
}

/** `{machineId}` in a path: any string; an unknown machine is a 404, not a 400. */
export const MachinePath = z.object({ machineId: z.string().max(200) });

/** The 404 of an unknown machine, or null when it is known. */
export async function unknownMachine(deps: AdminDeps, c: Context, machineId: string) {
  if (await machineExists(deps.db, machineId)) return null;
  return errorResponse(c, "NOT_FOUND", `Machine "${machineId}" is unknown`);
}

/** Records an operator's action; a failure to record is logged, not thrown at the caller. */
export async function audit(
  deps: AdminDeps,
  c: Context,
  action: string,
  machineId: string | null,
  outcome: string,
  details?: unknown,
): Promise<void> {
  const who = identityOf(c);
  try {
    await recordAudit(deps.db, {
      atMs: deps.clock.now(),
      tokenId: who.tokenId,
      actor: who.name,
      role: who.role,
      action,
      machineId,
      outcome,
      ...(details === undefined ? {} : { details }),
    }, deps.random);
  } catch (err) {
    deps.log.log("error", "audit entry not written", { action, machineId, err: String(err) });
  }
  deps.log.log("info", "admin action", { action, machineId, actor: who.name, outcome });
}

/**
 * The error response of a command a machine did not carry out, with a
 * sentence an operator can act on: 504 when it did not confirm in time, 503
 * when nothing answers for it on NATS.
 */
export function machineFailure(
  c: Context,
  deps: AdminDeps,
  machineId: string,
  what: string,
  error: ReplyError,
) {
  if (error.code === "TIMEOUT") {
    return errorResponse(
      c,
      "TIMEOUT",
      `Machine "${machineId}" did not confirm ${what} within ${deps.commandTimeoutMs} ms; ` +
        "whether it took effect is unknown: check its status and retry",
    );
  }
  if (error.code === "UNAVAILABLE") {
    return errorResponse(
      c,
      "UNAVAILABLE",
      `Machine "${machineId}" is not reachable over NATS for ${what}: ${error.message}`,
    );
  }
  return errorResponse(c, error.code, `Machine "${machineId}" refused ${what}: ${error.message}`);
}
