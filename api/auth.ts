/**
 * The technician token: control routes want `Authorization: Bearer <token>`.
 * Missing is 401, wrong is 403; the comparison takes the same time whatever
 * the guess, so the token cannot be found byte by byte.
 */
import type { MiddlewareHandler } from "hono";
import { errorResponse } from "./errors.ts";

const encoder = new TextEncoder();

/**
 * Compares two strings in time independent of where they differ: both are
 * hashed first, so even their lengths do not leak.
 */
export async function tokensEqual(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/**
 * Middleware that lets a request through only with the technician token.
 *
 * @throws {RangeError} When `techToken` is empty: an empty token would open the machine.
 */
export function requireTechnician(techToken: string): MiddlewareHandler {
  if (techToken.length === 0) throw new RangeError("Technician token must not be empty");
  return async (c, next) => {
    const header = c.req.header("authorization");
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) {
      return errorResponse(
        c,
        "UNAUTHORIZED",
        'Authorization: "Bearer <technician token>" is required',
      );
    }
    if (!(await tokensEqual(match[1]!, techToken))) {
      return errorResponse(c, "FORBIDDEN", "Technician token is wrong");
    }
    await next();
  };
}

/** The OpenAPI security scheme name of the technician token. */
export const technicianScheme = "technicianToken";
