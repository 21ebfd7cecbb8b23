/**
 * `POST /api/v1/machines/{machine_id}/sync` (seed 000 Part 2): machines that
 * speak only HTTPS send their sales since the last sync and their stock, and
 * get their new config back when theirs is stale. The endpoint authenticates,
 * validates, and feeds the fleet stream: ingestion stores the batch, once.
 *
 * - Auth: `Authorization: Bearer <machine API key>`; missing or unknown 401,
 *   another machine's key 403 (checked before the body is read). A key found
 *   good is remembered for `keyCacheMs` (10 s), so a machine syncing often
 *   costs the database one lookup per 10 s, and a revoked key stops working
 *   within that time.
 * - Prices are decimal dollars on the wire, integer cents inside.
 * - Each transaction becomes a `sale` event whose id is derived from machine,
 *   ts, item and index, so a batch sent twice (a retry after a lost response)
 *   is stored once; the stock becomes an `inventory` event and the reported
 *   config version a `heartbeat`, both with ids derived from the whole body.
 * - 503 when the stream does not take the events: the machine keeps its batch
 *   and retries.
 *
 * @example
 * ```ts
 * const app = new OpenAPIHono();
 * app.route("/", createSyncApi({ db, nc }));
 * const key = await addMachine(db, "vm-1");
 * ```
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Clock, createRealClock } from "../clock/clock.ts";
import { createLogger, type Logger } from "../log/log.ts";
import { encodeFleetEvent, fleet, type FleetEvent, type FleetNames } from "../protocol/fleet.ts";
import {
  ErrorBody,
  errorBody,
  errorHandler,
  errorResponse,
  notFoundHandler,
  validationHook,
} from "../api/errors.ts";
import type { Database } from "./db/database.ts";
import { checkMachineKey, desiredConfig, hashSecret } from "./db/machines.ts";

export { addMachine, type AddMachineOptions } from "./db/machines.ts";

/** An instant as the seed writes it: ISO 8601 with `Z` or an offset. */
const IsoInstant = z.iso.datetime({ offset: true });

/** Decimal dollars with at most two decimals. */
const Dollars = z.number().nonnegative().max(100_000).refine(
  (d) => Math.abs(d * 100 - Math.round(d * 100)) < 1e-6,
  "must have at most 2 decimals",
);

/** One sale in a sync batch. */
export const SyncTransaction = z.object({
  ts: IsoInstant,
  item_id: z.string().min(1).max(64),
  price_paid: Dollars,
}).strict();

/** The body of a sync: exactly the seed's example payload. */
export const SyncRequest = z.object({
  last_sync_ts: IsoInstant,
  config_version: z.string().min(1).max(40),
  transactions: z.array(SyncTransaction).max(5000),
  inventory_levels: z.record(z.string().min(1).max(64), z.number().int().nonnegative().max(1e6)),
}).strict().openapi("SyncRequest");
/** The body of a sync. */
export type SyncRequest = z.infer<typeof SyncRequest>;

/** A config the machine must apply, in the seed's shape (prices in dollars). */
export const NewConfig = z.object({
  version: z.string(),
  items: z.array(z.object({
    item_id: z.string(),
    name: z.string(),
    price: z.number(),
    quantity: z.number().int(),
  })),
}).openapi("NewConfig");

/** The answer to a sync. */
export const SyncResponse = z.object({
  status: z.literal("success"),
  new_config: NewConfig.optional(),
}).openapi("SyncResponse");
/** The answer to a sync. */
export type SyncResponse = z.infer<typeof SyncResponse>;

/** The OpenAPI security scheme name of machine API keys. */
export const machineKeyScheme = "machineKey";

const errorContent = { "application/json": { schema: ErrorBody } };

const syncRoute = createRoute({
  method: "post",
  path: "/api/v1/machines/{machine_id}/sync",
  tags: ["sync"],
  summary: "A machine reports its sales and stock; gets its new config when stale",
  security: [{ [machineKeyScheme]: [] }],
  request: {
    params: z.object({ machine_id: z.string() }),
    body: { content: { "application/json": { schema: SyncRequest } }, required: true },
  },
  responses: {
    200: {
      description: "Accepted; `new_config` when `config_version` differs from the desired one",
      content: { "application/json": { schema: SyncResponse } },
    },
    400: { description: "Invalid body (the message names the field)", content: errorContent },
    401: { description: "API key missing or unknown", content: errorContent },
    403: { description: "API key of another machine", content: errorContent },
    503: { description: "The fleet stream did not take the batch: retry", content: errorContent },
  },
});

/** Options of {@linkcode createSyncApi}. */
export interface SyncApiOptions {
  db: Database;
  nc: NatsConnection;
  /** The fleet's names (default: production `fleet`). */
  names?: FleetNames;
  clock?: Clock;
  log?: Logger;
  /** How long JetStream may take to acknowledge the batch, in ms (default 5000). */
  publishTimeoutMs?: number;
  /** How long a machine key found good is trusted without asking the database, in ms (default 10 000; 0: never). */
  keyCacheMs?: number;
}

/** Machine keys found good lately, by machine and key hash; bounded. */
class GoodKeys {
  private readonly until = new Map<string, number>();
  /** Trusts a good key for `ttlMs`; forgets everything past `capacity` entries. */
  constructor(private readonly ttlMs: number, private readonly capacity = 100_000) {}
  /** Whether `keyHash` was found good for `machineId` less than the TTL before `nowMs`. */
  has(machineId: string, keyHash: string, nowMs: number): boolean {
    const until = this.until.get(`${machineId}\n${keyHash}`);
    return until !== undefined && nowMs < until;
  }
  /** Remembers that `keyHash` is good for `machineId` as of `nowMs`. */
  add(machineId: string, keyHash: string, nowMs: number): void {
    if (this.ttlMs <= 0) return;
    if (this.until.size >= this.capacity) this.until.clear();
    this.until.set(`${machineId}\n${keyHash}`, nowMs + this.ttlMs);
  }
}

/** Sorts object keys recursively, so equal bodies serialise equally. */
function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

/** The sale events' ids: deterministic in machine, ts, item and index. */
export async function saleEventId(
  machineId: string,
  t: { ts: string; item_id: string },
  index: number,
): Promise<string> {
  return `s-${(await hashSecret(`${machineId}\n${t.ts}\n${t.item_id}\n${index}`)).slice(0, 40)}`;
}

/** The fleet events of one sync batch. */
export async function syncEvents(
  machineId: string,
  body: SyncRequest,
  nowMs: number,
): Promise<FleetEvent[]> {
  const events: FleetEvent[] = [];
  for (const [i, t] of body.transactions.entries()) {
    const soldAt = Date.parse(t.ts);
    events.push({
      id: await saleEventId(machineId, t, i),
      machineId,
      ts: soldAt,
      kind: "sale",
      itemId: t.item_id,
      priceCents: Math.round(t.price_paid * 100),
      soldAt,
      source: "sync",
    });
  }
  const bodyHash = (await hashSecret(`${machineId}\n${canonical(body)}`)).slice(0, 40);
  events.push({
    id: `i-${bodyHash}`,
    machineId,
    ts: nowMs,
    kind: "inventory",
    levels: body.inventory_levels,
    items: null,
    storageTempC: null,
    salesStopped: null,
    source: "sync",
  });
  events.push({
    id: `h-${bodyHash}`,
    machineId,
    ts: nowMs,
    kind: "heartbeat",
    configVersion: body.config_version,
    softwareVersion: null,
    outboxDepth: null,
    via: "sync",
  });
  return events;
}

function requireMachineKey(db: Database, goodKeys: GoodKeys, clock: Clock): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      return errorResponse(
        c,
        "UNAUTHORIZED",
        'Authorization: "Bearer <machine API key>" is required',
      );
    }
    const machineId = c.req.param("machine_id") ?? "";
    const keyHash = await hashSecret(match[1]!);
    if (goodKeys.has(machineId, keyHash, clock.now())) return await next();
    const check = await checkMachineKey(db, machineId, match[1]!);
    if (check === "ok") goodKeys.add(machineId, keyHash, clock.now());
    if (check === "unknown") return errorResponse(c, "UNAUTHORIZED", "Machine API key is unknown");
    if (check === "other_machine") {
      return errorResponse(
        c,
        "FORBIDDEN",
        `This API key does not speak for machine "${machineId}"`,
      );
    }
    await next();
  };
}

/** The `/sync` sub-app; mount it with `app.route("/", createSyncApi(options))`. */
export function createSyncApi(options: SyncApiOptions): OpenAPIHono {
  const { db, nc } = options;
  const names = options.names ?? fleet;
  const clock = options.clock ?? createRealClock();
  const log = options.log ?? createLogger({ clock, component: "sync-api" });
  const publishTimeoutMs = options.publishTimeoutMs ?? 5000;
  const js = jetstream(nc);
  const app = new OpenAPIHono({ defaultHook: validationHook });
  app.onError(errorHandler(log));
  app.notFound(notFoundHandler);
  app.openAPIRegistry.registerComponent("securitySchemes", machineKeyScheme, {
    type: "http",
    scheme: "bearer",
    description: "The machine's API key (`fleet machine add` prints it)",
  });

  // Authentication first: a stranger learns nothing about the body's rules.
  app.use(
    "/api/v1/machines/:machine_id/sync",
    requireMachineKey(db, new GoodKeys(options.keyCacheMs ?? 10_000), clock),
  );
  app.use(
    "/api/v1/machines/:machine_id/sync",
    bodyLimit({
      maxSize: 2 * 1024 * 1024,
      onError: (c) => errorResponse(c, "BAD_REQUEST", "(body): larger than 2 MiB", 400),
    }),
  );

  app.openapi(syncRoute, async (c) => {
    const { machine_id: machineId } = c.req.valid("param");
    const body = c.req.valid("json");
    const events = await syncEvents(machineId, body, clock.now());
    // The desired config is read while JetStream stores the batch.
    const [published, desired] = await Promise.all([
      Promise.all(
        events.map((e) =>
          js.publish(names.event(machineId, e.kind), encodeFleetEvent(e), {
            msgID: e.id,
            timeout: publishTimeoutMs,
          })
        ),
      ).then(() => null, (err: unknown) => err),
      desiredConfig(db, machineId),
    ]);
    if (published !== null) {
      log.log("warn", "sync batch not accepted by the stream", {
        machineId,
        err: String(published),
      });
      return c.json(
        errorBody("UNAVAILABLE", "The fleet stream is not available; retry later"),
        503,
      );
    }
    const response: SyncResponse = { status: "success" };
    if (desired && desired.version !== body.config_version) {
      response.new_config = {
        version: desired.version,
        items: desired.items.map((i) => ({
          item_id: i.itemId,
          name: i.name,
          price: i.priceCents / 100,
          quantity: i.quantity,
        })),
      };
    }
    return c.json(response, 200);
  });
  return app;
}
