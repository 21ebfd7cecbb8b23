/**
 * The one error body of the machine API and the one mapping from bus error
 * codes to HTTP statuses. Validation errors, failed bus results, bad JSON,
 * unknown routes and crashes all leave through here with the same shape:
 * `{ "error": { "code": "<ErrorCode>", "message": "<sentence>" } }`.
 */
import type { Context, TypedResponse } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { describeZodError, ErrorCode, type ReplyError } from "../protocol/define.ts";
import type { Logger } from "../log/log.ts";

/** The bus's error codes plus the two that only HTTP has (the technician token). */
export const ApiErrorCode = z.enum([...ErrorCode.options, "UNAUTHORIZED", "FORBIDDEN"]);
/** The bus's error codes plus the two that only HTTP has. */
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

/** The body of every error response. */
export const ErrorBody = z.object({ error: z.object({ code: ApiErrorCode, message: z.string() }) });
/** The body of every error response. */
export type ErrorBody = z.infer<typeof ErrorBody>;

/** HTTP statuses an error response may carry. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 415 | 500 | 503 | 504;

const statusOfCode: Record<ApiErrorCode, ErrorStatus> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  TIMEOUT: 504,
  // A faulted component refuses the act; the request itself was fine.
  FAULT: 409,
  INTERNAL: 500,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
};

/** The HTTP status an error code maps to. */
export function httpStatusOf(code: ApiErrorCode): ErrorStatus {
  return statusOfCode[code];
}

/** The error body for `code` and `message`. */
export function errorBody(code: ApiErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

/** An error response, typed per status so every route's declared errors accept it. */
export type ErrorReply = {
  [S in ErrorStatus]: Response & TypedResponse<ErrorBody, S, "json">;
}[ErrorStatus];

/** An error response; `status` defaults to the mapping of `code`. */
export function errorResponse(
  c: Context,
  code: ApiErrorCode,
  message: string,
  status: ErrorStatus = httpStatusOf(code),
): ErrorReply {
  return c.json(errorBody(code, message), status) as ErrorReply;
}

/** The error response of a failed bus result. */
export function failedResponse(c: Context, result: { error: ReplyError }): ErrorReply {
  return errorResponse(c, result.error.code, result.error.message);
}

/**
 * The `defaultHook` of every OpenAPIHono app: a validation failure of body,
 * path or query becomes 400 naming each bad field.
 */
export function validationHook(
  result: { success: true } | { success: false; error: z.ZodError },
  c: Context,
) {
  if (!result.success) return errorResponse(c, "BAD_REQUEST", describeZodError(result.error));
}

/**
 * The `default` response of every route in the OpenAPI document: any status a
 * route does not list carries the error body.
 */
export const errorDefault = {
  description: "Error: 400 invalid body, path or query (names the field); 401 technician " +
    "token missing, 403 wrong; 404 unknown machine, order or pizza; 409 refused in the " +
    "current state; 415 body not application/json; 500 internal; 503 component not " +
    "answering; 504 component too slow",
  content: { "application/json": { schema: ErrorBody } },
};

/** The app's `onError`: hono's own exceptions keep their status, anything else is a 500. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof HTTPException) {
      if (err.status === 400) {
        // Hono throws this only when the JSON body does not parse.
        return errorResponse(c, "BAD_REQUEST", "(body): not valid JSON");
      }
      if (err.status === 415) {
        return errorResponse(c, "BAD_REQUEST", "(body): must be application/json", 415);
      }
    }
    log.log("error", "http handler failed", {
      method: c.req.method,
      path: c.req.path,
      err: String(err),
    });
    return errorResponse(c, "INTERNAL", "Internal error");
  };
}

/** The app's `notFound`: an unknown path or method. */
export function notFoundHandler(c: Context) {
  return errorResponse(c, "NOT_FOUND", `No route for "${c.req.method} ${c.req.path}"`);
}
