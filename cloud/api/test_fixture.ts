/**
 * Test fixtures of the admin API and the monitor: a migrated database of a
 * test's own, a cloud bus on the real NATS, tokens of each role, the API
 * built on them, and fleet events written the way ingestion writes them.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { silentLogger } from "../../log/log.ts";
import { createCryptoRandom } from "../../random/random.ts";
import { connectTestBus, type TestBus } from "../../testing/nats.ts";
import {
  decodeFleetAlert,
  type FleetAlert,
  FleetEvent,
  type FleetNames,
  fleetNames,
} from "../../protocol/fleet.ts";
import type { Database } from "../db/database.ts";
import { type Backend, openTestDatabase } from "../db/test_databases.ts";
import { MachineCache, storeEvents } from "../ingest/store.ts";
import { addToken, type Role } from "../admin/tokens.ts";
import { type Monitor, startMonitor } from "../monitor/monitor.ts";
import { type CloudApi, createCloudApi } from "./app.ts";

const random = createCryptoRandom();

/** A fresh fleet root, so tests never hear each other. */
export function testFleetNames(prefix: string): FleetNames {
  return fleetNames(`${prefix}${random.uuid().replaceAll("-", "").slice(0, 10)}`);
}

/** What a test of the cloud gets. */
export interface CloudFixture {
  db: Database;
  backend: Backend;
  cloud: TestBus;
  nc: NatsConnection;
  names: FleetNames;
  api: CloudApi;
  monitor: Monitor;
  tokens: Record<Role, string>;
  /** Alerts heard on `fleet.alerts.>` of this fleet. */
  published: FleetAlert[];
  /** Calls the API in-process; `token` null sends no Authorization. */
  call(
    method: string,
    path: string,
    options?: { token?: string | null; body?: unknown },
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  /** Counts rows of a query returning `n`. */
  count(sql: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

/** Options of {@linkcode cloudFixture}. */
export interface CloudFixtureOptions {
  backend?: Backend;
  /** How long machines have to confirm a command (default 1500 ms). */
  commandTimeoutMs?: number;
  offlineAfterMs?: number;
}

/** Builds the cloud of one test; close it at the end. */
export async function cloudFixture(options: CloudFixtureOptions = {}): Promise<CloudFixture> {
  const backend = options.backend ?? "postgres";
  const test = await openTestDatabase(backend);
  const cloud = await connectTestBus({ machineId: "cloud" });
  const nc = cloud.raw.nc;
  const names = testFleetNames("tc");
  const published: FleetAlert[] = [];
  const sub = nc.subscribe(names.alerts("*"), {
    callback: (_err, msg) => {
      const d = decodeFleetAlert(msg.data);
      if (d.ok) published.push(d.value);
    },
  });
  const monitor = startMonitor({
    db: test.db,
    nc,
    names,
    clock: cloud.clock,
    log: silentLogger,
    schedule: false,
    ...(options.offlineAfterMs ? { offlineAfterMs: options.offlineAfterMs } : {}),
  });
  const api = createCloudApi({
    db: test.db,
    nc,
    bus: cloud.bus,
    clock: cloud.clock,
    log: silentLogger,
    names,
    commandTimeoutMs: options.commandTimeoutMs ?? 1500,
    monitor,
    ...(options.offlineAfterMs ? { offlineAfterMs: options.offlineAfterMs } : {}),
  });
  const tokens = {
    admin: (await addToken(test.db, { role: "admin", name: "ada" })).token,
    technician: (await addToken(test.db, { role: "technician", name: "tom" })).token,
    viewer: (await addToken(test.db, { role: "viewer", name: "vic" })).token,
  };
  return {
    db: test.db,
    backend,
    cloud,
    nc,
    names,
    api,
    monitor,
    tokens,
    published,
    async call(method, path, o = {}) {
      const token = o.token === undefined ? tokens.admin : o.token;
      const res = await api.app.request(path, {
        method,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(o.body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(o.body === undefined
          ? {}
          : { body: typeof o.body === "string" ? o.body : JSON.stringify(o.body) }),
      });
      return { status: res.status, json: await res.json() };
    },
    async count(sql, params = []) {
      return (await test.db.query<{ n: number }>(sql, params))[0]!.n;
    },
    async close() {
      await monitor.stop();
      sub.unsubscribe();
      await cloud.close();
      await test.dispose();
    },
  };
}

/** Writes `events` as an ingestion batch would (validated first). */
export async function store(db: Database, events: unknown[], nowMs = Date.now()): Promise<void> {
  const parsed = events.map((e) => FleetEvent.parse(e));
  await db.transaction((tx) => storeEvents(tx, parsed, new MachineCache(), nowMs));
}

const env = (machineId: string, ts: number) => ({ id: random.uuid(), machineId, ts });

/** Event builders for tests. */
export const ev = {
  temperature: (
    machineId: string,
    sensor: "oven" | "storage" | "ambient",
    tempC: number,
    ts: number,
    extra: { targetC?: number; state?: string } = {},
  ) => ({
    ...env(machineId, ts),
    kind: "temperature",
    sensor,
    tempC,
    targetC: extra.targetC ?? null,
    heaterPct: null,
    state: extra.state ?? null,
  }),
  heartbeat: (machineId: string, ts: number, configVersion: string | null) => ({
    ...env(machineId, ts),
    kind: "heartbeat",
    configVersion,
    softwareVersion: "1.0.0",
    outboxDepth: 0,
    via: "nats",
  }),
  inventory: (machineId: string, ts: number, levels: Record<string, number>) => ({
    ...env(machineId, ts),
    kind: "inventory",
    levels,
    items: Object.entries(levels).map(([pizzaId, quantity], i) => ({
      itemId: `${pizzaId}-batch`,
      machineId,
      pizzaId,
      quantity,
      storageSlot: i,
      expiresAt: ts + 2 * 24 * 3600_000,
      addedAt: ts - 3600_000,
    })),
    storageTempC: 4,
    salesStopped: false,
    source: "nats",
  }),
  status: (machineId: string, ts: number, status: string, maintenance = false) => ({
    ...env(machineId, ts),
    kind: "machine",
    status,
    reason: null,
    cashOnly: false,
    maintenance,
  }),
  order: (
    machineId: string,
    o: {
      orderId?: string;
      pizzaId: string;
      status: string;
      cents: number;
      placedAt: number;
      dispensedAt?: number;
    },
  ) => {
    const orderId = o.orderId ?? random.uuid();
    return {
      ...env(machineId, o.dispensedAt ?? o.placedAt),
      orderId,
      kind: "order",
      order: {
        orderId,
        machineId,
        pizzaId: o.pizzaId,
        status: o.status,
        totalAmountCents: o.cents,
        paymentMethod: "CARD",
        placedAt: o.placedAt,
        readyAt: o.dispensedAt ?? null,
        dispensedAt: o.dispensedAt ?? null,
      },
    };
  },
  payment: (machineId: string, status: "COMPLETED" | "FAILED", ts: number) => {
    const orderId = random.uuid();
    return {
      ...env(machineId, ts),
      orderId,
      kind: "payment",
      payment: {
        paymentId: random.uuid(),
        orderId,
        amountCents: 999,
        method: "CARD",
        status,
        transactionId: null,
        last4: "4242",
        insertedCents: 0,
        changeCents: 0,
        gatewayResponse: null,
        processedAt: ts,
      },
    };
  },
  cooking: (machineId: string, startedAt: number, cookMs: number) => {
    const orderId = random.uuid();
    return {
      ...env(machineId, startedAt + cookMs),
      orderId,
      kind: "cooking",
      session: {
        sessionId: random.uuid(),
        orderId,
        machineId,
        startTemperatureC: 200,
        targetTemperatureC: 220,
        currentTemperatureC: 220,
        estimatedCompletion: startedAt + cookMs,
        timeRemainingMs: 0,
        status: "COMPLETE",
        startedAt,
        completedAt: startedAt + cookMs,
      },
    };
  },
  sale: (machineId: string, itemId: string, priceCents: number, soldAt: number) => ({
    ...env(machineId, soldAt),
    kind: "sale",
    itemId,
    priceCents,
    soldAt,
    source: "sync",
  }),
  alert: (machineId: string, type: string, ts: number, resolved = false) => ({
    ...env(machineId, ts),
    kind: "alert",
    component: "carousel",
    alert: {
      alertId: `a-${type}`,
      type,
      severity: "WARNING",
      message: `${type} on ${machineId}`,
      resolved,
      createdAt: ts,
      resolvedAt: resolved ? ts : null,
    },
  }),
};
