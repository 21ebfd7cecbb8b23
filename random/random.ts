/**
 * The only module that draws randomness. Real runs use the platform's CSPRNG;
 * simulated runs use one seeded generator so a seed replays byte for byte.
 */
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";

/** A source of ids and random draws. */
export interface Random {
  /** A version-4 UUID. */
  uuid(): string;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** A float in [0, 1). */
  float(): number;
}

/** Randomness from `crypto`: unpredictable, for real machines. */
export function createCryptoRandom(): Random {
  return {
    uuid: () => crypto.randomUUID(),
    int: (min, max) => {
      const span = max - min + 1;
      // Rejection sampling keeps the draw unbiased for any span.
      const limit = Math.floor(0x1_0000_0000 / span) * span;
      const buf = new Uint32Array(1);
      do crypto.getRandomValues(buf); while (buf[0]! >= limit);
      return min + (buf[0]! % span);
    },
    float: () => {
      const buf = new Uint32Array(2);
      crypto.getRandomValues(buf);
      return ((buf[0]! >>> 5) * 67108864 + (buf[1]! >>> 6)) / 9007199254740992;
    },
  };
}

/** Deterministic randomness from a seed: same seed, same sequence. */
export function createSeededRandom(seed: number): Random {
  const rng = xoroshiro128plus(seed);
  const hex = (n: number) => uniformInt(rng, 0, 0xffff).toString(16).padStart(4, "0").slice(0, n);
  return {
    uuid: () => {
      const variant = (8 + uniformInt(rng, 0, 3)).toString(16);
      return `${hex(4)}${hex(4)}-${hex(4)}-4${hex(3)}-${variant}${hex(3)}-${hex(4)}${hex(4)}${
        hex(4)
      }`;
    },
    int: (min, max) => uniformInt(rng, min, max),
    float: () => uniformFloat64(rng),
  };
}

/** An exponential draw with mean `mean` from `random`. */
export function exponential(random: Random, mean: number): number {
  return -Math.log(1 - random.float()) * mean;
}

/** A normal draw with mean 0 and standard deviation `sd` from `random` (Box–Muller). */
export function gaussian(random: Random, sd: number): number {
  const radius = Math.sqrt(-2 * Math.log(1 - random.float()));
  return sd * radius * Math.cos(2 * Math.PI * random.float());
}
