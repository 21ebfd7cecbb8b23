/**
 * What every sub-app of the machine API shares: its dependencies, the bus
 * deadlines, the path parameters, and the guard that keeps other machines'
 * ids out.
 */
import type { MiddlewareHandler } from "hono";
import { createRoute, OpenAPIHono, type RouteConfig } from "@hono/zod-openapi";
import { z } from "zod";
import type { Clock } from "../clock/clock.ts";
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Logger } from "../log/log.ts";
import { type CommandDef, OrderId } from "../protocol/define.ts";
import { IdempotencyKey } from "../protocol/idempotency.ts";
import {
  errorDefault,
  errorHandler,
  errorResponse,
  notFoundHandler,
  validationHook,
} from "./errors.ts";

/** What the machine API needs. */
export interface ApiDeps {
  /** A bus of this machine (`bus.machineId === machineId`). */
  bus: TypedBus;
  clock: Clock;
  machineId: string;
  /** The technician's bearer token for the control routes. */
  techToken: string;
  log: Logger;
}

/** Deadline of an ordinary bus request, in clock ms. */
export const commandTimeoutMs = 5_000;

/**
 * Deadline of a payment, in clock ms: the reply waits for the gateway's
 * outcome, and the payment retry policy alone can take ~35 s.
 */
export const payTimeoutMs = 60_000;

/** `{machineId}` in a path: any string; one that is not ours is a 404, not a 400. */
export const MachineParams = z.object({ machineId: z.string() });

/** `{orderId}` in a path. */
export const OrderParams = z.object({ orderId: OrderId });

/**
 * Headers of the requests that act (create an order, pay, restock): an
 * optional `Idempotency-Key`, sent again unchanged when the request is
 * retried, so the retry gets the first result instead of acting twice.
 */
export const IdempotencyHeaders = z.object({
  "idempotency-key": IdempotencyKey.optional().describe(
    "One per attempt (per order, per payment attempt, per bill for cash, per restock), the same " +
      "on every retry of it: the retry gets the first result; the same key with another body is " +
      "409 CONFLICT",
  ),
});

/** The key of `IdempotencyHeaders` as a bus command field, when one was sent. */
export function keyOf(headers: z.infer<typeof IdempotencyHeaders>): { idempotencyKey?: string } {
  const key = headers["idempotency-key"];
  return key === undefined ? {} : { idempotencyKey: key };
}

/**
 * Middleware that answers 404 for a `machineId` path parameter other than
 * ours, before the body is even read.
 */
export function ourMachine(machineId: string): MiddlewareHandler {
  return async (c, next) => {
    const given = c.req.param("machineId");
    if (given !== machineId) {
      return errorResponse(c, "NOT_FOUND", `Machine "${given}" is not this machine`);
    }
    await next();
  };
}

/** A sub-app with the API's one validation hook and error handling. */
export function createSubApp(log: Logger): OpenAPIHono {
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.onError(errorHandler(log));
  app.notFound(notFoundHandler);
  return app;
}

/**
 * The schema of some request fields of a bus command, taken from the command
 * itself so an HTTP body is validated exactly as the bus will validate it.
 *
 * @throws {TypeError} When the command's request is not an object schema.
 */
export function fieldsOf<Q, K extends keyof Q & string>(
  def: CommandDef<Q, unknown>,
  keys: readonly K[],
): z.ZodType<Pick<Q, K>> {
  const request: unknown = def.request;
  if (!(request instanceof z.ZodObject)) {
    throw new TypeError(`Request of "${def.component}.${def.verb}" is not an object schema`);
  }
  const shape: Record<string, z.ZodType> = {};
  for (const key of keys) {
    const field: unknown = request.shape[key];
    if (!(field instanceof z.ZodType)) {
      throw new TypeError(`Request of "${def.component}.${def.verb}" has no field "${key}"`);
    }
    shape[key] = field;
  }
  return z.object(shape) as unknown as z.ZodType<Pick<Q, K>>;
}

/** A JSON response of `schema` in a route's `responses`. */
export function jsonResponse<S extends z.ZodType>(schema: S, description: string) {
  return { description, content: { "application/json": { schema } } };
}

/** A JSON request body of `schema`; `required: false` for a body that may be left out. */
export function jsonBody<S extends z.ZodType>(schema: S, required = true) {
  return { required, content: { "application/json": { schema } } };
}

/** A route as its sub-app declares it: what the sub-app adds to all its routes left out. */
export type RouteSpec = Omit<RouteConfig, "tags" | "security">;

/**
 * The route declarer of one sub-app: every route it declares carries the
 * sub-app's `tag` and `security` and answers any status it does not list with
 * the one error body.
 */
export function routeDeclarer(tag: string, security?: RouteConfig["security"]) {
  return <const R extends RouteSpec>(route: R) =>
    createRoute({
      ...route,
      tags: [tag],
      ...(security ? { security } : {}),
      responses: { ...route.responses, default: errorDefault },
    });
}
