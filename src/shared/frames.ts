/**
 * Parsing one JSON WebSocket frame of a typed protocol (the Owlrun node protocol, both ends):
 * a known, valid message; `ignore` for a type this side does not know (a newer peer — forward
 * compatible); or `invalid` (not JSON, no type, or a known type with a bad shape).
 */
import type * as z from "zod";

export type ParsedFrame<T> =
  { kind: "message"; msg: T } | { kind: "ignore"; type: string } | { kind: "invalid"; why: string };

export function parseTypedFrame<T>(
  raw: string,
  known: ReadonlySet<string>,
  schema: z.ZodType<T>,
  /** a hand-written check of the most frequent message (undefined: let the schema decide) */
  fast?: (obj: Record<string, unknown>, type: string) => T | undefined,
): ParsedFrame<T> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { kind: "invalid", why: "frame is not JSON" };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return { kind: "invalid", why: "frame is not a JSON object" };
  }
  const type = (json as { type?: unknown }).type;
  if (typeof type !== "string") return { kind: "invalid", why: "frame has no message type" };
  if (!known.has(type)) return { kind: "ignore", type: type.slice(0, 64) };
  const quick = fast?.(json as Record<string, unknown>, type);
  if (quick !== undefined) return { kind: "message", msg: quick };
  const r = schema.safeParse(json);
  if (r.success) return { kind: "message", msg: r.data };
  const issue = r.error.issues[0];
  return { kind: "invalid", why: `bad ${type}: ${issue?.path.join(".")} ${issue?.message}`.slice(0, 300) };
}
