import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { sharedNatsUrl, waitFor } from "../testing/nats.ts";
import { deleteFleetStreams } from "./ingest/mod.ts";
import { testFleetNames } from "./api/test_fixture.ts";

const repo = fileURLToPath(new URL("..", import.meta.url));
const main = fileURLToPath(new URL("./main.ts", import.meta.url));

function spawnCloud(env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${repo}/deno.json`, main],
    cwd: repo,
    env: { DATABASE_URL: "", NATS_URL: sharedNatsUrl, HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

Deno.test("deno task cloud: a bad setting stops it, naming the variable", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", `${repo}/deno.json`, main],
    cwd: repo,
    env: { PORT: "eighty", DATABASE_URL: "" },
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /Bad PORT "eighty"/);
});

Deno.test("deno task cloud: migrates, serves, ingests /sync, monitors; stops on SIGTERM", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "fornax-cloud-main-" });
  const names = testFleetNames("tm");
  const child = spawnCloud({ FORNAX_DATA: dataDir, FLEET_ROOT: names.root });
  const lines: string[] = [];
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const find = (re: RegExp) => lines.map((l) => re.exec(l)).find((m) => m)?.[1];
  let exited = false;
  try {
    const base = await waitFor(
      "the API address",
      () => find(/admin API at (http:\/\/[^/]+)\//),
      60_000,
    );
    const token = find(/made an admin token for you \(shown once\): (fat_\S+)/);
    assert.ok(token, lines.join("\n"));
    // The lines come together but may arrive in two reads of the pipe.
    await waitFor(
      "the ingestion line",
      () => lines.some((l) => l.includes(`on stream "${names.stream}"`)) || undefined,
      10_000,
    );
    const auth = { authorization: `Bearer ${token}` };

    const doc = await fetch(`${base}/openapi.json`);
    assert.equal(doc.status, 200);
    assert.ok((await doc.json()).paths["/api/v1/admin/machines"]);

    const made = await fetch(`${base}/api/v1/admin/machines`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ machineId: "vm-main", location: { address: "Station" } }),
    });
    assert.equal(made.status, 201);
    const { apiKey } = await made.json();
    const sync = await fetch(`${base}/api/v1/machines/vm-main/sync`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        last_sync_ts: "2025-10-12T10:00:00Z",
        config_version: "v1",
        transactions: [{ ts: "2025-10-12T10:01:30Z", item_id: "101", price_paid: 1.5 }],
        inventory_levels: { "101": 3 },
      }),
    });
    assert.equal(sync.status, 200);
    await sync.body?.cancel();
    // Ingested by the process's own workers: the machine is online with its stock.
    await waitFor("vm-main online", async () => {
      const res = await fetch(`${base}/api/v1/admin/machines`, { headers: auth });
      const body = await res.json();
      const m = body.machines[0];
      return m?.online && m.inventoryLevels["101"] === 3 ? true : undefined;
    }, 20_000);
    const run = await fetch(`${base}/api/v1/admin/monitor/connectivity/run`, {
      method: "POST",
      headers: auth,
    });
    assert.equal(run.status, 200);
    await run.body?.cancel();

    child.kill("SIGTERM");
    const status = await child.status;
    exited = true;
    assert.equal(status.code, 0);
    await reading;
    assert.ok(lines.some((l) => l.includes("stopping")));
  } finally {
    if (!exited) {
      child.kill("SIGKILL");
      await child.status;
      await reading;
    }
    const nc = await connect({ servers: sharedNatsUrl });
    await deleteFleetStreams(nc, names);
    await nc.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
