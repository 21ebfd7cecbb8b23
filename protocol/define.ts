/**
 * How a subject is declared: once, with its zod schema. A definition builds its
 * subject, encodes (validate, then serialise) and decodes (parse, then a result).
 */
import { z } from "zod";

/** A machine id usable as one NATS subject token. */
export const MachineId = z.string().regex(
  /^[A-Za-z0-9_-]{1,64}$/,
  "must be 1-64 of A-Z a-z 0-9 _ -",
);

/** An order id (UUID). */
export const OrderId = z.uuid();

/** Fields every message carries. */
export const Envelope = z.object({
  id: z.string().min(1).max(64),
  machineId: MachineId,
  ts: z.number().int().nonnegative(),
  orderId: OrderId.optional(),
});
/** Fields every message carries. */
export type Envelope = z.infer<typeof Envelope>;

/** Components that own subjects under `fornax.<machineId>.<component>`. */
export const Component = z.enum([
  "oven",
  "carousel",
  "arm",
  "payment",
  "safety",
  "order",
  "supervisor",
  "sync",
  "plant",
]);

/** Who a subject belongs to: a component, or the host process that runs components. */
export type SubjectOwner = Component | "host";
/** Components that own subjects under `fornax.<machineId>.<component>`. */
export type Component = z.infer<typeof Component>;

/** Why a request failed; mirrors HTTP 400/404/409/503/504/500. */
export const ErrorCode = z.enum([
  "BAD_REQUEST",
  "NOT_FOUND",
  "CONFLICT",
  "UNAVAILABLE",
  "TIMEOUT",
  "FAULT",
  "INTERNAL",
]);
/** Why a request failed. */
export type ErrorCode = z.infer<typeof ErrorCode>;

/** The error part of a failed reply. */
export const ReplyError = z.object({ code: ErrorCode, message: z.string() });
/** The error part of a failed reply. */
export type ReplyError = z.infer<typeof ReplyError>;

/** Outcome of a request: a value or a named error. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ReplyError };

/** Outcome of decoding bytes from the wire. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

/** A successful result. */
export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

/** A failed result with `code` and `message`. */
export function fail<T = never>(code: ErrorCode, message: string): Result<T> {
  return { ok: false, error: { code, message } };
}

/** A zod error as one line naming each bad field. */
export function describeZodError(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join(".") : "(body)"}: ${i.message}`)
    .join("; ");
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Texts this process serialised lately, each with the schema that validated
 * it. A process that hears its own messages (every actor of a controller on
 * one bus, the simulator above all) would otherwise validate each one twice.
 * Every message carries a fresh id, so a text is seen again only as a copy of
 * the very message; the memo is cleared when full, which costs only a
 * revalidation.
 */
const recentlyEncoded = new Map<string, z.ZodType>();
const RECENT_LIMIT = 4_096;

/** Parses JSON bytes and validates them with `schema`, naming the bad field. */
export function decodeWith<T>(schema: z.ZodType<T>, data: Uint8Array): Decoded<T> {
  let raw: unknown;
  const text = decoder.decode(data);
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, error: "(body): not valid JSON" };
  }
  // No protocol schema rewrites what it parses (protocol/define_test.ts): what
  // one accepted and serialised parses back to exactly what it would return.
  if (recentlyEncoded.get(text) === schema) return { ok: true, value: raw as T };
  const parsed = schema.safeParse(raw);
  return parsed.success
    ? { ok: true, value: parsed.data }
    : { ok: false, error: describeZodError(parsed.error) };
}

/** Validates `value` with `schema`, then serialises it. @throws {z.ZodError} When invalid. */
export function encodeWith<T>(schema: z.ZodType<T>, value: T): Uint8Array {
  const text = JSON.stringify(schema.parse(value));
  if (recentlyEncoded.size >= RECENT_LIMIT) recentlyEncoded.clear();
  recentlyEncoded.set(text, schema);
  return encoder.encode(text);
}

/** A published event: `fornax.<machineId>.<component>.evt.<name>`. */
export interface EventDef<P> {
  readonly kind: "event";
  readonly component: SubjectOwner;
  readonly name: string;
  readonly schema: z.ZodType<Envelope & P>;
  /** The subject for one machine, or `*` for all. */
  subject(machineId: string): string;
  /** Validates, then serialises. @throws {z.ZodError} On an invalid message. */
  encode(msg: Envelope & P): Uint8Array;
  /** Parses and validates bytes from the wire. */
  decode(data: Uint8Array): Decoded<Envelope & P>;
}

/** A request/reply command: `fornax.<machineId>.<component>.cmd.<verb>`. */
export interface CommandDef<Req, Res> {
  readonly kind: "command";
  readonly component: Component;
  readonly verb: string;
  readonly request: z.ZodType<Envelope & Req>;
  readonly reply: z.ZodType<Envelope & Result<Res>>;
  /** The subject for one machine. */
  subject(machineId: string): string;
  /** Validates, then serialises a request. @throws {z.ZodError} On an invalid request. */
  encodeRequest(msg: Envelope & Req): Uint8Array;
  /** Parses and validates a request from the wire. */
  decodeRequest(data: Uint8Array): Decoded<Envelope & Req>;
  /** Validates, then serialises a reply. @throws {z.ZodError} On an invalid reply. */
  encodeReply(msg: Envelope & Result<Res>): Uint8Array;
  /** Parses and validates a reply from the wire. */
  decodeReply(data: Uint8Array): Decoded<Envelope & Result<Res>>;
}

/** Payload type of an event definition. */
export type EventPayload<D> = D extends EventDef<infer P> ? P : never;
/** Full message type (envelope and payload) of an event definition. */
export type EventMessage<D> = D extends EventDef<infer P> ? Envelope & P : never;
/** Request payload type of a command definition. */
export type CommandRequest<D> = D extends CommandDef<infer Q, unknown> ? Q : never;
/** Reply value type of a command definition. */
export type CommandReply<D> = D extends CommandDef<unknown, infer R> ? R : never;

/** Declares an event of `component` with payload fields `shape`. */
export function defineEvent<S extends z.ZodRawShape>(
  component: SubjectOwner,
  name: string,
  shape: S,
): EventDef<z.infer<z.ZodObject<S>>> {
  type M = Envelope & z.infer<z.ZodObject<S>>;
  const schema = Envelope.extend(shape) as unknown as z.ZodType<M>;
  return {
    kind: "event",
    component,
    name,
    schema,
    subject: (machineId) => `fornax.${machineId}.${component}.evt.${name}`,
    encode: (msg) => encodeWith(schema, msg),
    decode: (data) => decodeWith(schema, data),
  };
}

/** Declares a command of `component` with request fields `req` and reply value `res`. */
export function defineCommand<S extends z.ZodRawShape, R extends z.ZodType>(
  component: Component,
  verb: string,
  req: S,
  res: R,
): CommandDef<z.infer<z.ZodObject<S>>, z.infer<R>> {
  type Q = Envelope & z.infer<z.ZodObject<S>>;
  type A = Envelope & Result<z.infer<R>>;
  const request = Envelope.extend(req) as unknown as z.ZodType<Q>;
  const reply = z.union([
    Envelope.extend({ ok: z.literal(true), value: res }),
    Envelope.extend({ ok: z.literal(false), error: ReplyError }),
  ]) as unknown as z.ZodType<A>;
  return {
    kind: "command",
    component,
    verb,
    request,
    reply,
    subject: (machineId) => `fornax.${machineId}.${component}.cmd.${verb}`,
    encodeRequest: (msg) => encodeWith(request, msg),
    decodeRequest: (data) => decodeWith(request, data),
    encodeReply: (msg) => encodeWith(reply, msg),
    decodeReply: (data) => decodeWith(reply, data),
  };
}
