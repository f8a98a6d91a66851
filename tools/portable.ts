/**
 * Portable JSON Schemas for MCP tools: zod writes a nullable primitive as `type: ["string",
 * "null"]`, which some clients (Gemini, OpenAPI-subset validators) reject. `portable(schema)`
 * keeps the zod schema (validation unchanged) and hands the SDK a JSON Schema in which every type
 * array is an `anyOf` of single types instead.
 */
import type { McpServer } from "@modelcontextprotocol/server";
import type * as z from "zod";

type Json = Record<string, unknown>;

/** Keywords that describe the value as a whole; they stay outside the anyOf. */
const SHARED = new Set([
  "description",
  "title",
  "default",
  "examples",
  "deprecated",
  "readOnly",
  "writeOnly",
  "$schema",
  "$id",
  "$ref",
  "$defs",
  "definitions",
  "id",
]);

export function noTypeArrays(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(noTypeArrays);
  if (!schema || typeof schema !== "object") return schema;
  const out: Json = {};
  for (const [k, v] of Object.entries(schema)) out[k] = noTypeArrays(v);
  if (!Array.isArray(out.type) || "anyOf" in out) return out;
  const { type, ...rest } = out;
  const outer: Json = {};
  const inner: Json = {};
  for (const [k, v] of Object.entries(rest)) (SHARED.has(k) ? outer : inner)[k] = v;
  return {
    ...outer,
    anyOf: (type as string[]).map((t) => (t === "null" ? { type: "null" } : { type: t, ...inner })),
  };
}

type JsonSchemaFn = (options: unknown) => Record<string, unknown>;

/** The same schema, whose JSON Schema (as the MCP SDK asks for it) has no type arrays. */
export function portable<S extends z.ZodType>(schema: S): S {
  const std = schema["~standard"] as unknown as Json & {
    jsonSchema: { input: JsonSchemaFn; output: JsonSchemaFn };
  };
  const jsonSchema = {
    input: (o: unknown) => noTypeArrays(std.jsonSchema.input(o)),
    output: (o: unknown) => noTypeArrays(std.jsonSchema.output(o)),
  };
  const wrapped = Object.create(schema) as S;
  Object.defineProperty(wrapped, "~standard", { value: { ...std, jsonSchema }, enumerable: false });
  return wrapped;
}

/** `server` whose registerTool hands the SDK portable output schemas (each tool file unchanged). */
export function withPortableOutputs(server: McpServer): McpServer {
  const s = Object.create(server) as McpServer;
  s.registerTool = ((name: string, config: { outputSchema?: z.ZodType }, cb: unknown) =>
    server.registerTool(
      name,
      { ...config, outputSchema: config.outputSchema && portable(config.outputSchema) } as never,
      cb as never,
    )) as unknown as McpServer["registerTool"];
  return s;
}
