/**
 * The cloud's HTTP API: the admin API (seed 003 §4.3, §4.4; bearer tokens
 * with roles), the machines' `/sync` (seed 000), `/health` and the OpenAPI
 * document at `/openapi.json`. Every error has one body:
 * `{ "error": { "code", "message" } }`.
 *
 * @example
 * ```ts
 * const api = createCloudApi({ db, nc, bus, clock, log });
 * const server = Deno.serve({ port: 8090 }, api.fetch);
 * ```
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Clock } from "../../clock/clock.ts";
import type { TypedBus } from "../../bus/typed_bus.ts";
import type { Logger } from "../../log/log.ts";
import { createCryptoRandom, type Random } from "../../random/random.ts";
import { fleet, type FleetNames } from "../../protocol/fleet.ts";
import { createSubApp } from "../../api/context.ts";
import type { Database } from "../db/database.ts";
import { createSyncApi } from "../sync_api.ts";
import { defaultOfflineAfterMs } from "../admin/fleet.ts";
import type { Monitor } from "../monitor/monitor.ts";
import { type AdminDeps, adminScheme } from "./common.ts";
import { machineRoutes } from "./machines.ts";
import { configRoutes } from "./config.ts";
import { inventoryRoutes } from "./inventory.ts";
import { analyticsRoutes } from "./analytics.ts";
import { alertRoutes } from "./alerts.ts";
import { monitorRoutes } from "./monitor.ts";
import { accessRoutes } from "./access.ts";

/** Options of {@linkcode createCloudApi}. */
export interface CloudApiOptions {
  db: Database;
  /** JetStream for `/sync` and alerts; null serves the admin API only (no `/sync`). */
  nc: NatsConnection | null;
  /** Commands to machines; null answers 503 to maintenance and restock. */
  bus: TypedBus | null;
  clock: Clock;
  log: Logger;
  names?: FleetNames;
  random?: Random;
  /** Quiet this long is offline (default 10 min). */
  offlineAfterMs?: number;
  /** How long a machine has to confirm a command (default 5000 clock ms). */
  commandTimeoutMs?: number;
  monitor?: Monitor | null;
}

/** The built API. */
export interface CloudApi {
  app: OpenAPIHono;
  /** The handler for `Deno.serve`. */
  fetch: (req: Request) => Response | Promise<Response>;
}

/** Builds the cloud API. */
export function createCloudApi(options: CloudApiOptions): CloudApi {
  const log = options.log.child("api");
  const deps: AdminDeps = {
    db: options.db,
    bus: options.bus,
    nc: options.nc,
    names: options.names ?? fleet,
    clock: options.clock,
    log,
    random: options.random ?? createCryptoRandom(),
    offlineAfterMs: options.offlineAfterMs ?? defaultOfflineAfterMs,
    commandTimeoutMs: options.commandTimeoutMs ?? 5000,
    monitor: options.monitor ?? null,
  };
  const app = createSubApp(log);
  app.openAPIRegistry.registerComponent("securitySchemes", adminScheme, {
    type: "http",
    scheme: "bearer",
    description: "A person's token with a role: viewer reads; technician also runs " +
      "maintenance, restock, alerts and monitor jobs; admin also changes configs and " +
      "issues credentials (`deno task fleet token add --role …`)",
  });
  app.get("/health", (c) => c.json({ status: "ok", time: options.clock.now() }));
  app.route("/", machineRoutes(deps));
  app.route("/", configRoutes(deps));
  app.route("/", inventoryRoutes(deps));
  app.route("/", analyticsRoutes(deps));
  app.route("/", alertRoutes(deps));
  app.route("/", monitorRoutes(deps));
  app.route("/", accessRoutes(deps));
  if (options.nc) {
    app.route(
      "/",
      createSyncApi({
        db: options.db,
        nc: options.nc,
        names: deps.names,
        clock: options.clock,
        log,
      }),
    );
  }
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Fornax cloud API",
      version: "1.0.0",
      description: "The fleet's admin API and the machines' /sync. Money in integer cents, " +
        "temperatures in °C, instants in epoch ms.",
    },
  });
  return { app, fetch: (req) => app.fetch(req) };
}
