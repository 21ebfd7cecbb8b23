/**
 * The cloud's HTTP API: admin routes with role-checked bearer tokens, and
 * the machines' `/sync`.
 *
 * @example
 * ```ts
 * const api = createCloudApi({ db, nc, bus, clock, log });
 * Deno.serve({ port: 8090 }, api.fetch);
 * ```
 */
export { type CloudApi, type CloudApiOptions, createCloudApi } from "./app.ts";
export { type AdminDeps, adminScheme, requireRole } from "./common.ts";
