import assert from "node:assert/strict";
import { z } from "zod";
import { type CommandDef, decodeWith, encodeWith, type EventDef } from "./define.ts";

/** Every exported schema of protocol/*.ts, and the schemas of every event and command. */
async function allSchemas(): Promise<Array<{ name: string; schema: z.ZodType }>> {
  const found = [];
  for await (const entry of Deno.readDir(new URL(".", import.meta.url))) {
    if (!entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
    const module = await import(`./${entry.name}`);
    for (const [name, value] of Object.entries(module)) {
      const at = `${entry.name}: ${name}`;
      if (value instanceof z.ZodType) found.push({ name: at, schema: value });
      const def = value as EventDef<unknown> | CommandDef<unknown, unknown> | null;
      if (def?.kind === "event") found.push({ name: at, schema: def.schema as z.ZodType });
      if (def?.kind === "command") {
        found.push({ name: `${at} request`, schema: def.request as z.ZodType });
        found.push({ name: `${at} reply`, schema: def.reply as z.ZodType });
      }
    }
  }
  return found;
}

/** Schema kinds whose output can differ from their input. */
const rewriting = new Set([
  "pipe",
  "transform",
  "default",
  "prefault",
  "catch",
  "codec",
  "readonly",
]);

/** Kinds found anywhere inside `schema` that rewrite what they parse. */
function rewritingKinds(schema: z.ZodType, seen = new Set<unknown>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const def = schema._zod.def as unknown as Record<string, unknown>;
  const found = rewriting.has(String(def.type)) ? [String(def.type)] : [];
  // `.trim()`, `.toLowerCase()` and `.overwrite()` are checks that rewrite the value.
  for (const check of (def.checks ?? []) as z.core.$ZodCheck[]) {
    if (check._zod.def.check === "overwrite") found.push("overwrite");
  }
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
    const checks = z.object({ a: z.string().trim(), b: z.array(z.number()).readonly() });
    assert.deepEqual(rewritingKinds(checks).sort(), ["overwrite", "readonly"]);
  });

  await t.step("no protocol schema rewrites what it parses", async () => {
    const schemas = await allSchemas();
    assert.ok(schemas.length > 150, `only ${schemas.length} schemas found`);
    for (const { name, schema } of schemas) assert.deepEqual(rewritingKinds(schema), [], name);
  });

  const Strict = z.object({ n: z.number().int() });
  const Loose = z.object({ n: z.number() });

  await t.step("a text encoded by the same schema is not validated again", () => {
    let checks = 0;
    const Counted = z.object({ n: z.number().refine(() => ++checks > 0) });
    const bytes = encodeWith(Counted, { n: 1.5 });
    assert.equal(checks, 1);
    assert.deepEqual(decodeWith(Counted, bytes.slice()), { ok: true, value: { n: 1.5 } });
    assert.equal(checks, 1, "decoding a copy of our own text skipped the check");
    const other = new TextEncoder().encode('{"n":2.5}');
    assert.deepEqual(decodeWith(Counted, other), { ok: true, value: { n: 2.5 } });
    assert.equal(checks, 2, "a text we did not encode was checked");
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
