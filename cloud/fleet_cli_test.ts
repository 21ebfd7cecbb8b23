import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { connect } from "@nats-io/transport-node";
import { silentLogger } from "../log/log.ts";
import { createRealClock } from "../clock/clock.ts";
import { sharedNatsUrl, waitFor } from "../testing/nats.ts";
import { openPglite } from "./db/database.ts";
import { deleteFleetStreams, ensureIngestConsumer, startIngestWorker } from "./ingest/mod.ts";
import { createCloudApi } from "./api/app.ts";
import { testFleetNames } from "./api/test_fixture.ts";
import { lockDataDir } from "./data_lock.ts";
import { fleetCli } from "./fleet_cli.ts";

const repo = fromFileUrl(new URL("..", import.meta.url));
const cli = fromFileUrl(new URL("./fleet_cli.ts", import.meta.url));

/** Runs `deno task fleet …` on the data folder `dataDir`. */
async function fleet(dataDir: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${repo}/deno.json`, cli, ...args],
    cwd: repo,
    env: { FORNAX_DATA: dataDir, DATABASE_URL: "" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout).trim(),
    stderr: text.decode(out.stderr).trim(),
  };
}

/** Runs the CLI in this process (its database opened and closed per call). */
async function inProcess(dataDir: string, ...args: string[]) {
  let out = "";
  let err = "";
  const env: Record<string, string> = { FORNAX_DATA: dataDir };
  const code = await fleetCli(args, (name) => env[name], {
    out: (text) => (out += text),
    err: (text) => (err += text),
  });
  return { code, out, err };
}

const seedPayload = {
  "last_sync_ts": "2025-10-12T10:00:00Z",
  "config_version": "v1.2",
  "transactions": [{ "ts": "2025-10-12T10:01:30Z", "item_id": "101", "price_paid": 1.50 }],
  "inventory_levels": { "101": 3 },
};

Deno.test("deno task fleet, end to end on a PGlite folder", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-fleet-cli-" });
  try {
    let key = "";
    let token = "";

    await t.step("machine add prints the machine's API key", async () => {
      const r = await fleet(dataDir, "machine", "add", "vm-1", "--location", "Main St 1");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^fmk_[0-9a-f]{64}$/);
      key = r.stdout;
    });

    await t.step("token add prints a bearer token; --json parses", async () => {
      const r = await fleet(dataDir, "token", "add", "--role", "admin", "--name", "ops", "--json");
      assert.equal(r.code, 0, r.stderr);
      const made = JSON.parse(r.stdout);
      assert.equal(made.role, "admin");
      assert.equal(made.name, "ops");
      assert.match(made.token, /^fat_[0-9a-f]{64}$/);
      token = made.token;
    });

    await t.step("machines --json parses", async () => {
      const json = await fleet(dataDir, "machines", "--json");
      assert.equal(json.code, 0, json.stderr);
      const { machines } = JSON.parse(json.stdout);
      assert.equal(machines[0].machineId, "vm-1");
      assert.equal(machines[0].location.address, "Main St 1");
      assert.equal(machines[0].online, false);
    });

    await t.step("tables, alerts and token list (in process)", async () => {
      const table = await inProcess(dataDir, "machines");
      assert.equal(table.code, 0, table.err);
      assert.match(table.out, /^ID\s+STATUS/);
      assert.match(table.out, /vm-1\s+OFFLINE\s+no/);
      const alerts = await inProcess(dataDir, "alerts", "--json");
      assert.deepEqual(JSON.parse(alerts.out), { alerts: [] });
      assert.equal((await inProcess(dataDir, "alerts")).out, "no alerts");
      const tokens = await inProcess(dataDir, "token", "list", "--json");
      const list = JSON.parse(tokens.out).tokens;
      assert.equal(list[0].name, "ops");
      assert.ok(!tokens.out.includes(token), "tokens are never listed");
    });

    await t.step("a bad command line prints usage and exits 2", async () => {
      const cases = [
        ["bogus"],
        [],
        ["machines", "--nope"],
        ["token", "add", "--role", "root"],
        ["machine", "add"],
        ["machine", "add", "bad id"],
        ["machines", "--status", "SLEEPY"],
      ];
      // Refused before the database is opened: they may run at once.
      const results = await Promise.all(cases.map((args) => fleet(dataDir, ...args)));
      results.forEach((r, i) => {
        assert.equal(r.code, 2, `${cases[i]!.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /Usage: deno task fleet/);
      });
    });

    await t.step("a PGlite folder held by another process is refused, exit 1", async () => {
      const lock = lockDataDir(dataDir, "a test (pid 1)");
      try {
        const r = await inProcess(dataDir, "machines");
        assert.equal(r.code, 1);
        assert.match(r.err, /is in use by a test \(pid 1\)/);
      } finally {
        lock.release();
      }
    });

    await t.step("the key is accepted by /sync, the token by the admin API", async () => {
      const db = await openPglite(`${dataDir}/cloud-pglite`);
      const nc = await connect({ servers: sharedNatsUrl });
      const names = testFleetNames("tf");
      await ensureIngestConsumer(nc, names);
      const worker = startIngestWorker({ db, nc, names, log: silentLogger });
      try {
        const api = createCloudApi({
          db,
          nc,
          bus: null,
          names,
          clock: createRealClock(),
          log: silentLogger,
        });
        const sync = await api.app.request("/api/v1/machines/vm-1/sync", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
          body: JSON.stringify(seedPayload),
        });
        assert.equal(sync.status, 200);
        await waitFor("vm-1 online", async () => {
          const res = await api.app.request("/api/v1/admin/machines", {
            headers: { authorization: `Bearer ${token}` },
          });
          assert.equal(res.status, 200);
          const body = await res.json();
          return body.machines[0]?.online ? true : undefined;
        });
      } finally {
        await worker.stop();
        await deleteFleetStreams(nc, names);
        await nc.close();
        await db.close();
      }
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
