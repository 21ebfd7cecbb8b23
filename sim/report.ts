/**
 * The run's report: one self-contained HTML file (inline CSS and SVG, no
 * script, no external asset) with the summary, the oven's temperature against
 * its target, every order's way through its statuses, the stock over time and
 * the faults, on one shared time axis.
 */
import type { RunSummary } from "./run.ts";
import type { WorldResult } from "./world/world.ts";
import type { ResolvedScenario } from "./scenario.ts";

const W = 1200;
const LEFT = 70;
const RIGHT = 20;
const PLOT = W - LEFT - RIGHT;

/** Colours of the order statuses, in the order an order goes through them. */
export const statusColours: Record<string, string> = {
  PENDING: "#c7c7c7",
  PAYMENT_PROCESSING: "#9ecae1",
  PAYMENT_PENDING: "#fdae6b",
  PAID: "#6baed6",
  PREPARING: "#fd8d3c",
  READY: "#74c476",
  DISPENSED: "#238b45",
  CANCELLED: "#969696",
  REFUNDED: "#de2d26",
};

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Fixed-point coordinates keep the file small and stable. */
function f(n: number): string {
  return (Math.round(n * 10) / 10).toString();
}

interface Axis {
  t0: number;
  t1: number;
  x(t: number): number;
  utcOffsetMin: number;
}

function axisOf(t0: number, t1: number, utcOffsetMin: number): Axis {
  const span = Math.max(1, t1 - t0);
  return { t0, t1, utcOffsetMin, x: (t) => LEFT + (t - t0) / span * PLOT };
}

function clock(t: number, offsetMin: number): string {
  const d = new Date(t + offsetMin * 60_000);
  return `${String(d.getUTCHours()).padStart(2, "0")}:${
    String(d.getUTCMinutes()).padStart(2, "0")
  }`;
}

/** Vertical grid lines and time labels every hour (or quarter hour on short runs). */
function timeGrid(a: Axis, top: number, height: number): string {
  const spanH = (a.t1 - a.t0) / 3_600_000;
  const stepMs = spanH > 12 ? 2 * 3_600_000 : spanH > 3 ? 3_600_000 : spanH > 1 ? 900_000 : 300_000;
  const first = Math.ceil(a.t0 / stepMs) * stepMs;
  const parts: string[] = [];
  for (let t = first; t <= a.t1; t += stepMs) {
    const x = f(a.x(t));
    parts.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + height}" class="grid"/>`,
      `<text x="${x}" y="${top + height + 14}" class="tick" text-anchor="middle">${
        clock(t, a.utcOffsetMin)
      }</text>`,
    );
  }
  return parts.join("");
}

/** Fault markers: a red line and a label at each fault seen. */
function faultMarks(world: WorldResult, a: Axis, top: number, height: number): string {
  return world.observer.faults.map((x) => {
    const px = f(a.x(x.atMs));
    return `<line x1="${px}" y1="${top}" x2="${px}" y2="${top + height}" class="fault"><title>${
      esc(`${clock(x.atMs, a.utcOffsetMin)} ${x.kind}: ${x.detail}`)
    }</title></line>`;
  }).join("");
}

/** Keeps at most `max` points, always the extremes of each bucket (so peaks survive). */
function downsample(t: number[], v: number[], max: number): [number, number][] {
  if (t.length <= max) return t.map((ti, i) => [ti, v[i]!]);
  const out: [number, number][] = [];
  const bucket = Math.ceil(t.length / (max / 2));
  for (let i = 0; i < t.length; i += bucket) {
    let lo = i;
    let hi = i;
    for (let j = i; j < Math.min(t.length, i + bucket); j++) {
      if (v[j]! < v[lo]!) lo = j;
      if (v[j]! > v[hi]!) hi = j;
    }
    for (const k of lo < hi ? [lo, hi] : [hi, lo]) out.push([t[k]!, v[k]!]);
  }
  return out;
}

function ovenChart(world: WorldResult, a: Axis): string {
  const top = 20;
  const h = 220;
  const maxC = Math.max(300, Math.ceil(world.maxOvenTempC / 50) * 50);
  const y = (c: number) => top + h - Math.max(0, Math.min(c, maxC)) / maxC * h;
  const { t, c } = world.ovenSamples;
  const points = downsample(t, c, 2400).map(([ti, ci]) => `${f(a.x(ti))},${f(y(ci))}`).join(" ");
  // The target as a step line from the oven's published telemetry.
  const target: string[] = [];
  let last: number | null = null;
  for (const s of world.observer.ovenPublished) {
    if (s.targetC === last) continue;
    if (last !== null) target.push(`${f(a.x(s.atMs))},${f(y(last))}`);
    target.push(`${f(a.x(s.atMs))},${f(y(s.targetC))}`);
    last = s.targetC;
  }
  if (last !== null) target.push(`${f(a.x(a.t1))},${f(y(last))}`);
  const yTicks = [0, 100, 200, 300].filter((v) => v <= maxC).map((v) =>
    `<line x1="${LEFT}" y1="${f(y(v))}" x2="${W - RIGHT}" y2="${f(y(v))}" class="grid"/>` +
    `<text x="${LEFT - 6}" y="${f(y(v) + 4)}" class="tick" text-anchor="end">${v} °C</text>`
  ).join("");
  const limit = `<line x1="${LEFT}" y1="${f(y(300))}" x2="${W - RIGHT}" y2="${
    f(y(300))
  }" class="limit"/><text x="${W - RIGHT - 4}" y="${
    f(y(300) - 4)
  }" class="tick" text-anchor="end">safety limit 300 °C</text>`;
  return `<svg viewBox="0 0 ${W} ${h + 50}" width="${W}" height="${
    h + 50
  }" role="img" aria-label="Oven temperature">
${timeGrid(a, top, h)}${yTicks}${limit}${faultMarks(world, a, top, h)}
<polyline points="${target.join(" ")}" class="target"/>
<polyline points="${points}" class="temp"/>
<text x="${LEFT + 8}" y="${
    top + 14
  }" class="legend"><tspan class="lt">━</tspan> oven (real) <tspan class="lg">━</tspan> target</text>
</svg>`;
}

function stockChart(world: WorldResult, a: Axis): string {
  const top = 20;
  const h = 160;
  const series = world.observer.stock;
  const maxN = Math.max(1, ...series.map((s) => s.items));
  const y = (n: number) => top + h - n / maxN * h;
  const step = (key: "items" | "available") => {
    const pts: string[] = [];
    let prev: number | null = null;
    for (const s of series) {
      if (prev !== null) pts.push(`${f(a.x(s.atMs))},${f(y(prev))}`);
      pts.push(`${f(a.x(s.atMs))},${f(y(s[key]))}`);
      prev = s[key];
    }
    if (prev !== null) pts.push(`${f(a.x(a.t1))},${f(y(prev))}`);
    return pts.join(" ");
  };
  const ticks = [0, Math.round(maxN / 2), maxN].map((v) =>
    `<line x1="${LEFT}" y1="${f(y(v))}" x2="${W - RIGHT}" y2="${f(y(v))}" class="grid"/>` +
    `<text x="${LEFT - 6}" y="${f(y(v) + 4)}" class="tick" text-anchor="end">${v}</text>`
  ).join("");
  const discards = world.observer.discards.map((d) =>
    `<circle cx="${f(a.x(d.atMs))}" cy="${top + h - 3}" r="3" class="discard"><title>${
      esc(`${clock(d.atMs, a.utcOffsetMin)} discarded (${d.reason}) from slot ${d.slot}`)
    }</title></circle>`
  ).join("");
  return `<svg viewBox="0 0 ${W} ${h + 50}" width="${W}" height="${
    h + 50
  }" role="img" aria-label="Stock over time">
${timeGrid(a, top, h)}${ticks}${faultMarks(world, a, top, h)}
<polyline points="${step("items")}" class="items"/>
<polyline points="${step("available")}" class="avail"/>
${discards}
<text x="${LEFT + 8}" y="${
    top + 14
  }" class="legend"><tspan class="li">━</tspan> pizzas in storage <tspan class="la">━</tspan> sellable <tspan class="ld">●</tspan> discarded</text>
</svg>`;
}

function orderTimeline(world: WorldResult, a: Axis): string {
  const orders = [...world.observer.orders.values()]
    .filter((o) => o.statuses.length > 0)
    .sort((x, y) => x.statuses[0]!.atMs - y.statuses[0]!.atMs);
  const row = orders.length > 150 ? 3 : orders.length > 60 ? 5 : 9;
  const top = 10;
  const h = Math.max(40, orders.length * row);
  const bars: string[] = [];
  orders.forEach((o, i) => {
    const y = top + i * row;
    o.statuses.forEach((s, k) => {
      const end = o.statuses[k + 1]?.atMs ??
        (["DISPENSED", "REFUNDED", "CANCELLED"].includes(s.status) ? s.atMs + 60_000 : a.t1);
      const x0 = a.x(s.atMs);
      const x1 = Math.max(x0 + 1, a.x(end));
      bars.push(
        `<rect x="${f(x0)}" y="${y}" width="${f(x1 - x0)}" height="${row - 1}" fill="${
          statusColours[s.status] ?? "#000"
        }"><title>${
          esc(
            `${o.orderId.slice(0, 8)} ${o.pizzaId ?? ""} ${s.status} at ${
              clock(s.atMs, a.utcOffsetMin)
            }${o.reason && k === o.statuses.length - 1 ? `: ${o.reason}` : ""}`,
          )
        }</title></rect>`,
      );
    });
  });
  let lx = LEFT;
  const legend = Object.entries(statusColours).map(([s, c]) => {
    const item = `<rect x="${lx}" y="${top + h + 24}" width="12" height="12" fill="${c}"/>` +
      `<text x="${lx + 16}" y="${top + h + 34}" class="tick">${s}</text>`;
    lx += 28 + s.length * 7;
    return item;
  }).join("");
  return `<svg viewBox="0 0 ${W} ${h + 50}" width="${W}" height="${
    h + 50
  }" role="img" aria-label="Orders through their statuses">
${timeGrid(a, top, h)}${faultMarks(world, a, top, h)}
${bars.join("\n")}
${legend}
</svg>`;
}

function summaryTable(s: RunSummary): string {
  const money = (c: number) => `$${(c / 100).toFixed(2)}`;
  const rows: [string, string][] = [
    [
      "Scenario",
      `${s.scenario} (seed ${s.seed}, ${s.mode} mode${s.idempotence ? ", idempotence" : ""})`,
    ],
    [
      "Simulated",
      `${(s.simulatedMs / 3_600_000).toFixed(2)} h in ${
        (s.wallMs / 1000).toFixed(1)
      } s (${s.speedup}×)`,
    ],
    ["Customers", `${s.customers}`],
    [
      "Orders",
      `${s.orders}: ${s.dispensed} dispensed, ${s.refunded} refunded, ${s.cancelled} cancelled, ${s.open} open`,
    ],
    ["Revenue", money(s.revenueCents)],
    ["Wait (placed → READY)", `avg ${s.avgWaitS ?? "–"} s, p95 ${s.p95WaitS ?? "–"} s`],
    ["Throughput", `${s.pizzasPerHour} pizzas/h`],
    ["Oven", `${s.ovenEnergyWh} Wh, max ${s.maxOvenTempC} °C`],
    ["Controller boots", `${s.boots}`],
    [
      "Faults seen",
      Object.entries(s.faultsSeen).map(([k, v]) => `${k} ×${v}`).join(", ") || "none",
    ],
    ["Alerts", Object.entries(s.alerts).map(([k, v]) => `${k} ×${v}`).join(", ") || "none"],
    ["Log SHA-256", `<code>${s.logSha256}</code>`],
  ];
  return `<table>${
    rows.map(([k, v]) =>
      `<tr><th>${esc(k)}</th><td>${v.startsWith("<code>") ? v : esc(v)}</td></tr>`
    )
      .join("")
  }</table>`;
}

/** The report's HTML. */
export function renderReport(s: RunSummary, world: WorldResult, r: ResolvedScenario): string {
  const a = axisOf(world.startMs, world.endMs, r.config.utcOffsetMin);
  const verdict = s.violations.length === 0
    ? `<p class="ok">Every invariant held.</p>`
    : `<div class="bad"><p>${s.violations.length} invariant violation(s); replay with <code>${
      esc(s.replay)
    }</code></p><ul>${
      s.violations.slice(0, 50).map((v) =>
        `<li><b>${esc(v.invariant)}</b> at ${esc(v.at)}: ${esc(v.message)}</li>`
      ).join("")
    }</ul></div>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Fornax simulation: ${esc(s.scenario)} seed ${s.seed}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:${W + 40}px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 6px}
p.desc{color:#555;margin:0 0 12px} table{border-collapse:collapse}
th{text-align:left;padding:3px 16px 3px 0;color:#555;font-weight:600} td{padding:3px 0}
code{font-size:12px} .ok{color:#238b45;font-weight:600} .bad{color:#a50f15}
svg{display:block;background:#fff} .grid{stroke:#e5e5e5} .tick{font-size:11px;fill:#666}
.legend{font-size:12px;fill:#333} .temp{fill:none;stroke:#d94801;stroke-width:1.2}
.target{fill:none;stroke:#2171b5;stroke-width:1.5;stroke-dasharray:5 3}
.limit{stroke:#a50f15;stroke-dasharray:2 2} .fault{stroke:#e31a1c;stroke-width:1;opacity:.6}
.items{fill:none;stroke:#6a51a3;stroke-width:1.6} .avail{fill:none;stroke:#41ab5d;stroke-width:1.4}
.discard{fill:#e31a1c} .lt{fill:#d94801} .lg{fill:#2171b5} .li{fill:#6a51a3} .la{fill:#41ab5d} .ld{fill:#e31a1c}
</style></head><body>
<h1>${esc(s.scenario)} — seed ${s.seed}</h1>
<p class="desc">${esc(r.scenario.description)}</p>
${verdict}
${summaryTable(s)}
<h2>Oven temperature and target</h2>
${ovenChart(world, a)}
<h2>Orders through their statuses (${world.observer.orders.size})</h2>
${orderTimeline(world, a)}
<h2>Stock over time</h2>
${stockChart(world, a)}
<p class="desc">Red lines mark faults as the machine saw them; hover for details.</p>
</body></html>
`;
}

/** Writes the report of a run to `path`. */
export async function writeReport(
  path: string,
  s: RunSummary,
  world: WorldResult,
  r: ResolvedScenario,
): Promise<void> {
  await Deno.writeTextFile(path, renderReport(s, world, r));
}
