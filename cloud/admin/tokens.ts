/**
 * People's bearer tokens for the admin API, with roles: a viewer reads, a
 * technician also acts on machines (maintenance, restock, alerts), an admin
 * also changes configs and issues credentials. Tokens are 256-bit random
 * strings stored as SHA-256 (a slow hash adds nothing for keys that cannot be
 * guessed); the token itself is shown once, when it is made.
 */
import { z } from "zod";
import { createCryptoRandom, type Random } from "../../random/random.ts";
import type { Queryable } from "../db/database.ts";
import { hashSecret } from "../db/machines.ts";

/** The roles of people, weakest first. */
export const Role = z.enum(["viewer", "technician", "admin"]);
/** A role of a person. */
export type Role = z.infer<typeof Role>;

const rank: Record<Role, number> = { viewer: 0, technician: 1, admin: 2 };

/** Whether a token of role `have` may do what needs `need`. */
export function roleAllows(have: Role, need: Role): boolean {
  return rank[have] >= rank[need];
}

/** Who a valid token is. */
export interface TokenIdentity {
  tokenId: string;
  name: string;
  role: Role;
}

/** A token as listed (never the token itself). */
export interface TokenInfo extends TokenIdentity {
  createdAtMs: number;
  lastUsedAtMs: number | null;
  revoked: boolean;
}

const hex = (random: Random) => random.uuid().replaceAll("-", "");

/** A new bearer token: `fat_` and 244 random bits in hex. */
export function newToken(random: Random = createCryptoRandom()): string {
  return `fat_${hex(random)}${hex(random)}`;
}

/** Options of {@linkcode addToken}. */
export interface AddTokenOptions {
  role: Role;
  /** Who holds it (default `<role>-<tokenId>`). */
  name?: string;
  random?: Random;
}

/**
 * Issues a token of `role`; returns it once (only its hash is kept).
 *
 * @throws {z.ZodError} When `role` is not a role.
 */
export async function addToken(
  db: Queryable,
  options: AddTokenOptions,
): Promise<{ tokenId: string; name: string; role: Role; token: string }> {
  const role = Role.parse(options.role);
  const random = options.random ?? createCryptoRandom();
  const tokenId = `tok_${hex(random).slice(0, 12)}`;
  const name = options.name ?? `${role}-${tokenId.slice(4)}`;
  const token = newToken(random);
  await db.query(
    "INSERT INTO api_tokens (token_id, name, role, token_hash) VALUES ($1, $2, $3, $4)",
    [tokenId, name, role, await hashSecret(token)],
  );
  return { tokenId, name, role, token };
}

/**
 * Who `token` is, or null when it is unknown, revoked or expired. Marks the
 * token used at most once a minute, so reads do not turn into writes.
 */
export async function checkToken(db: Queryable, token: string): Promise<TokenIdentity | null> {
  const rows = await db.query<{ token_id: string; name: string; role: Role; stale: boolean }>(
    `SELECT token_id, name, role,
            (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
       FROM api_tokens
      WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
    [await hashSecret(token)],
  );
  const row = rows[0];
  if (!row) return null;
  if (row.stale) {
    await db.query("UPDATE api_tokens SET last_used_at = now() WHERE token_id = $1", [
      row.token_id,
    ]);
  }
  return { tokenId: row.token_id, name: row.name, role: row.role };
}

/** Every token, newest first. */
export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const rows = await db.query<{
    token_id: string;
    name: string;
    role: Role;
    created_ms: number;
    used_ms: number | null;
    revoked: boolean;
  }>(
    `SELECT token_id, name, role,
            (extract(epoch FROM created_at) * 1000)::float8 AS created_ms,
            (extract(epoch FROM last_used_at) * 1000)::float8 AS used_ms,
            revoked_at IS NOT NULL AS revoked
       FROM api_tokens ORDER BY created_at DESC, token_id`,
  );
  return rows.map((r) => ({
    tokenId: r.token_id,
    name: r.name,
    role: r.role,
    createdAtMs: Math.round(r.created_ms),
    lastUsedAtMs: r.used_ms === null ? null : Math.round(r.used_ms),
    revoked: r.revoked,
  }));
}

/** Revokes a token; false when no unrevoked token has that id. */
export async function revokeToken(db: Queryable, tokenId: string): Promise<boolean> {
  const rows = await db.query(
    "UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL RETURNING 1",
    [tokenId],
  );
  return rows.length > 0;
}

/** How many unrevoked tokens exist (the cloud offers a first admin token when none). */
export async function countTokens(db: Queryable): Promise<number> {
  const rows = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM api_tokens WHERE revoked_at IS NULL",
  );
  return rows[0]?.n ?? 0;
}
