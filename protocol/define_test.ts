import assert from "node:assert/strict";
import { z } from "zod";
import { type CommandDef, decodeWith, encodeWith, type EventDef } from "./define.ts";

const modules = [
  "arm",
  "carousel",
  "common",
  "order",
  "oven",
  "payment",
  "plant",
  "safety",
  "supervisor",
  "sync",
];

/** Every event and command the protocol declares. */
async function allDefs(): Promise<Array<EventDef<unknown> | CommandDef<unknown, unknown>>> {
  const defs = [];
  for (const m of modules) {
    for (const value of Object.values(await import(`./${m}.ts`))) {
      const kind = (value as { kind?: unknown } | null)?.kind;
      if (kind === "event" || kind === "command") {
        defs.push(value as EventDef<unknown> | CommandDef<unknown, unknown>);
      }
    }
  }
  return defs;
}

/** Schema kinds whose output can differ from their input. */
const rewriting = new Set(["pipe", "transform", "default", "prefault", "catch", "codec"]);

/** Kinds found anywhere inside `schema` that rewrite what they parse. */
function rewritingKinds(schema: z.ZodType, seen = new Set<unknown>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const def = schema._zod.def as unknown as Record<string, unknown>;
  const found = rewriting.has(String(def.type)) ? [String(def.type)] : [];
  const children: unknown[] = [];
  for (const value of Object.values(def)) {
    if (value instanceof z.ZodType) children.push(value);
    else if (Array.isArray(value)) children.push(...value);
    else if (value && typeof value === "object") children.push(...Object.values(value));
  }
  if (typeof def.getter === "function") children.push(def.getter());
  for (const child of children) {
    if (child instanceof z.ZodType) found.push(...rewritingKinds(child, seen));
  }
  return found;
}

Deno.test("protocol: decoding what this process encoded skips no check", async (t) => {
  await t.step("the walk finds rewriting schemas nested anywhere", () => {
    const nested = z.object({
      a: z.union([z.string(), z.object({ b: z.array(z.number().default(1)) })]),
      c: z.string().transform((s) => s.length),
    });
    assert.deepEqual(rewritingKinds(nested).sort(), ["default", "pipe", "transform"]);
  });

  await t.step("no message schema rewrites what it parses", async () => {
    const defs = await allDefs();
    assert.ok(defs.length > 60, `only ${defs.length} definitions found`);
    for (const def of defs) {
      const schemas = def.kind === "event" ? [def.schema] : [def.request, def.reply];
      for (const schema of schemas) {
        const name = def.kind === "event" ? def.name : def.verb;
        assert.deepEqual(rewritingKinds(schema), [], `${def.component}.${name}`);
      }
    }
  });

  const Strict = z.object({ n: z.number().int() });
  const Loose = z.object({ n: z.number() });

  await t.step("a text encoded by the same schema decodes to the same value", () => {
    const bytes = encodeWith(Loose, { n: 1.5 });
    assert.deepEqual(decodeWith(Loose, bytes), { ok: true, value: { n: 1.5 } });
    assert.deepEqual(decodeWith(Loose, bytes.slice()), { ok: true, value: { n: 1.5 } });
  });

  await t.step("another schema still validates it", () => {
    const decoded = decodeWith(Strict, encodeWith(Loose, { n: 2.5 }));
    assert.equal(decoded.ok, false);
  });

  await t.step("bytes nobody here encoded are validated", () => {
    const decoded = decodeWith(Loose, new TextEncoder().encode('{"n":"x"}'));
    assert.equal(decoded.ok, false);
    assert.match(!decoded.ok ? decoded.error : "", /^n: /);
  });
});
