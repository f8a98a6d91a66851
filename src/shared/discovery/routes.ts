/**
 * A route described once, next to its handler: the zod schemas it validates with and answers in.
 * OpenAPI, llms.txt and the router-walk test are all built from these records, so the documents
 * cannot drift from the code.
 */
import * as z from "zod";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

/** Ways to pay or authenticate; a route lists the alternatives it accepts (any one suffices). */
export type Security = "cashu" | "bearer" | "provider" | "l402" | "admin";

export interface ResponseDoc {
  description: string;
  /** body schema; omitted for bodiless answers */
  schema?: z.ZodType;
  /** default application/json */
  contentType?: string;
  /** more bodies for the same status, by content type (e.g. the SSE stream) */
  alternatives?: Record<string, z.ZodType>;
  headers?: z.ZodObject;
}

export interface RouteDoc {
  method: HttpMethod;
  /** express-style path, `:name` for a parameter */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** accepted credentials, any one suffices; omitted = open */
  security?: Security[];
  /** the request body schema, the same object the handler parses with */
  body?: z.ZodType;
  query?: z.ZodObject;
  /** request headers (payment headers such as X-Cashu) */
  headers?: z.ZodObject;
  /** path parameters; by default every `:name` is a string */
  params?: z.ZodObject;
  responses: Record<number, ResponseDoc>;
  /** error statuses answered with the group's error body: status → when */
  errors?: Record<number, string>;
  /** an HTTP upgrade to a WebSocket, served outside express */
  websocket?: boolean;
}

/** Routes mounted together, sharing a path prefix and an error body. */
export interface RouteGroup {
  name: string;
  description: string;
  /** mount path, e.g. "/mint" */
  prefix?: string;
  errorSchema: z.ZodType;
  routes: RouteDoc[];
}

/** A 200 answer with a JSON body. */
export const okJson = (description: string, schema: z.ZodType): Record<number, ResponseDoc> => ({
  200: { description, schema },
});
/** A 201 answer with a JSON body. */
export const createdJson = (description: string, schema: z.ZodType): Record<number, ResponseDoc> => ({
  201: { description, schema },
});

/** `/v1/keys/:id/caps` → `/v1/keys/{id}/caps` */
export const openApiPath = (path: string) => path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}");

/** Every documented `METHOD /path` (express style, prefix applied), for comparing with a router. */
export function documentedRoutes(groups: RouteGroup[]): string[] {
  return groups.flatMap((g) => g.routes.map((r) => `${r.method.toUpperCase()} ${(g.prefix ?? "") + r.path}`));
}

/** `{"error":{"message","type","code"}}`: the error body of the gateway and the MCP HTTP server. */
export const ErrorBodySchema = z
  .object({
    error: z.looseObject({
      message: z.string(),
      type: z.string().meta({
        description:
          "stable machine word: invalid_token, token_spent, insufficient_balance, rate_limited, no_providers, invalid_request, …",
      }),
      code: z.number().int(),
    }),
  })
  .meta({ id: "Error" });
