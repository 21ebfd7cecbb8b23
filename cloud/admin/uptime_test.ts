import assert from "node:assert/strict";
import { uptimePercent } from "./uptime.ts";

const hour = 3600_000;
const base = { startMs: 0, endMs: 10 * hour, knownFromMs: 0, offline: [] };

Deno.test("uptimePercent", async (t) => {
  await t.step("no reports: a known machine is taken as operational", () => {
    assert.equal(uptimePercent({ ...base, initialStatus: null, changes: [] }), 100);
  });

  await t.step("time in ERROR or MAINTENANCE is down; DEGRADED (cash only) is up", () => {
    assert.equal(
      uptimePercent({
        ...base,
        initialStatus: "OPERATIONAL",
        changes: [
          { atMs: 2 * hour, status: "ERROR" },
          { atMs: 3 * hour, status: "DEGRADED" },
          { atMs: 5 * hour, status: "MAINTENANCE" },
          { atMs: 6 * hour, status: "OPERATIONAL" },
        ],
      }),
      80,
    );
  });

  await t.step("offline spans are down, overlapping ones counted once", () => {
    assert.equal(
      uptimePercent({
        ...base,
        initialStatus: "OPERATIONAL",
        changes: [],
        offline: [{ fromMs: 1 * hour, toMs: 3 * hour }, { fromMs: 2 * hour, toMs: 4 * hour }],
      }),
      70,
    );
  });

  await t.step("time before the machine was known is not counted; empty window is null", () => {
    assert.equal(
      uptimePercent({
        ...base,
        knownFromMs: 5 * hour,
        initialStatus: null,
        changes: [{ atMs: 9 * hour, status: "ERROR" }],
      }),
      80,
    );
    assert.equal(
      uptimePercent({ ...base, knownFromMs: 11 * hour, initialStatus: null, changes: [] }),
      null,
    );
  });

  await t.step("a status from before the window holds at its start", () => {
    assert.equal(
      uptimePercent({
        ...base,
        initialStatus: "ERROR",
        changes: [{ atMs: 5 * hour, status: "OPERATIONAL" }],
      }),
      50,
    );
  });
});
