/**
 * One seed per run, split into independent streams by name: the customers,
 * the bus faults and each controller boot draw from their own, so adding a
 * draw in one never shifts the others.
 */
import { createSeededRandom, type Random } from "../../random/random.ts";

/** A 31-bit seed for the stream `name` of run `seed` (FNV-1a over both). */
export function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  const text = `${seed}/${name}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/** The seeded stream `name` of run `seed`. */
export function stream(seed: number, name: string): Random {
  return createSeededRandom(streamSeed(seed, name));
}

/** Picks a key of `weights` in proportion to its weight; undefined when all are 0. */
export function weighted<K extends string>(
  random: Random,
  weights: ReadonlyArray<readonly [K, number]>,
): K | undefined {
  const total = weights.reduce((s, [, w]) => s + Math.max(0, w), 0);
  if (!(total > 0)) return undefined;
  let x = random.float() * total;
  for (const [k, w] of weights) {
    x -= Math.max(0, w);
    if (x < 0) return k;
  }
  return weights.findLast(([, w]) => w > 0)?.[0];
}
