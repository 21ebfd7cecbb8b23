/**
 * The machine's HTTP API: customer routes, technician routes, the live feed,
 * the kiosk page at `/`, `/health` and the OpenAPI document at
 * `/openapi.json`. Serve it with `Deno.serve(api.fetch)`; the live feed needs
 * Deno's WebSocket upgrade, so it works only behind `Deno.serve`.
 *
 * @example
 * ```ts
 * const api = createMachineApi({ bus, clock, machineId, techToken, log });
 * const server = Deno.serve({ port: 8080 }, api.fetch);
 * // … on shutdown:
 * api.close();
 * await server.shutdown();
 * ```
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "zod";
import type { Clock } from "../clock/clock.ts";
import type { TypedBus } from "../bus/typed_bus.ts";
import type { Logger } from "../log/log.ts";
import { technicianScheme } from "./auth.ts";
import { type ApiDeps, createSubApp, jsonResponse, routeDeclarer } from "./context.ts";
import { controlRoutes } from "./control_routes.ts";
import { customerRoutes } from "./customer_routes.ts";
import { kioskPage } from "./kiosk.ts";
import { liveRoutes } from "./live.ts";

/** Options of {@linkcode createMachineApi}. */
export interface MachineApiOptions {
  /** A bus of this machine. */
  bus: TypedBus;
  clock: Clock;
  machineId: string;
  /** Bearer token of the technician routes; must not be empty. */
  techToken: string;
  log: Logger;
}

/** A built machine API. */
export interface MachineApi {
  app: OpenAPIHono;
  /** The handler for `Deno.serve`. */
  fetch: (req: Request) => Response | Promise<Response>;
  /** Closes every live socket and drops its subscriptions. */
  close(): void;
  /** Live sockets upgraded and not yet closed. */
  openSockets(): number;
}

const healthRoute = routeDeclarer("health")({
  method: "get",
  path: "/health",
  summary: "The API process is up",
  responses: {
    200: jsonResponse(
      z.object({ status: z.literal("ok"), machineId: z.string(), time: z.number() }),
      "Up",
    ),
  },
});

/**
 * Builds the machine API on `bus`.
 *
 * @throws {RangeError} When `techToken` is empty or `bus` speaks for another machine.
 */
export function createMachineApi(options: MachineApiOptions): MachineApi {
  if (options.bus.machineId !== options.machineId) {
    throw new RangeError(
      `Bus speaks for machine "${options.bus.machineId}", not "${options.machineId}"`,
    );
  }
  const log = options.log.child("api");
  const deps: ApiDeps = { ...options, log };
  const app = createSubApp(log);
  const live = liveRoutes(deps);

  app.openAPIRegistry.registerComponent("securitySchemes", technicianScheme, {
    type: "http",
    scheme: "bearer",
    description: "The technician token of this machine",
  });

  app.get("/", (c) => c.html(kioskPage(options.machineId)));
  app.openapi(
    healthRoute,
    (c) =>
      c.json(
        { status: "ok" as const, machineId: options.machineId, time: options.clock.now() },
        200,
      ),
  );
  app.route("/", customerRoutes(deps));
  app.route("/", controlRoutes(deps));
  app.route("/", live.app);
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Fornax machine API",
      version: "1.0.0",
      description: `Pizza machine "${options.machineId}": kiosk, technician and live feed. ` +
        "Money in integer cents; instants in epoch ms of the machine's clock.",
    },
  });

  return {
    app,
    fetch: (req) => app.fetch(req),
    close: () => live.closeAll(),
    openSockets: () => live.openSockets(),
  };
}
