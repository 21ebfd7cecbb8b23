/** Small SQL helpers the admin queries share. */

/** `col` (timestamptz) as epoch ms, float8 (null stays null). */
export const ms = (col: string) => `(extract(epoch FROM ${col}) * 1000)::float8`;

/** Epoch ms parameter `$n` as timestamptz. */
export const at = (param: string) => `to_timestamp(${param}::float8 / 1000.0)`;

/** A float ms from SQL as integer ms, or null. */
export function toMs(v: number | null | undefined): number | null {
  return v === null || v === undefined ? null : Math.round(v);
}

/** A jsonb value as JS: both backends parse jsonb, but a text cast would not be. */
export function fromJson<T>(v: unknown): T {
  return (typeof v === "string" ? JSON.parse(v) : v) as T;
}
