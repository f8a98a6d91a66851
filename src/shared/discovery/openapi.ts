/**
 * OpenAPI 3.1 from route records (zod-openapi turns each zod schema into JSON Schema). One builder
 * for the gateway and the MCP server's own HTTP surface.
 */
import * as z from "zod";
import {
  createDocument,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponseObject,
} from "zod-openapi";
import { openApiPath, type RouteDoc, type RouteGroup, type Security } from "./routes.js";

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
  baseUrl: string;
}

const SECURITY_SCHEMES = {
  cashu: {
    type: "apiKey",
    in: "header",
    name: "X-Cashu",
    description:
      "A Cashu token (cashuA… or cashuB…) from a trusted mint paying this one request; the unused part comes back in X-Cashu-Change (or the last SSE event).",
  },
  bearer: {
    type: "http",
    scheme: "bearer",
    description:
      "An account key (rc_…), a session key (sk-…) or a raw Cashu token used as the key (it becomes a session on first use).",
  },
  provider: {
    type: "http",
    scheme: "bearer",
    description: "A provider key (owlr_prov_…) from POST /v1/gateway/signup.",
  },
  admin: {
    type: "http",
    scheme: "bearer",
    description: "The gateway's admin token (owlr_admin_…), in `<data dir>/gateway/admin-token` (0600).",
  },
  l402: {
    type: "http",
    scheme: "L402",
    description:
      'L402: a 402 answer carries `WWW-Authenticate: L402 macaroon="…", invoice="…"`; pay the invoice, then send `Authorization: L402 <macaroon>:<preimage>`.',
  },
} as const;

const paramNames = (path: string) => [...path.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!);

function operation(route: RouteDoc, group: RouteGroup): ZodOpenApiOperationObject {
  const names = paramNames(route.path);
  const pathParams =
    route.params ??
    (names.length ? z.object(Object.fromEntries(names.map((n) => [n, z.string()]))) : undefined);
  const responses: Record<string, ZodOpenApiResponseObject> = {};
  for (const [status, r] of Object.entries(route.responses)) {
    const content: Record<string, { schema: z.ZodType }> = {};
    if (r.schema) content[r.contentType ?? "application/json"] = { schema: r.schema };
    for (const [type, schema] of Object.entries(r.alternatives ?? {})) content[type] = { schema };
    responses[status] = {
      description: r.description,
      ...(Object.keys(content).length ? { content } : {}),
      ...(r.headers ? { headers: r.headers } : {}),
    };
  }
  for (const [status, when] of Object.entries(route.errors ?? {})) {
    responses[status] = {
      description: when,
      content: { "application/json": { schema: group.errorSchema } },
      ...(status === "429" ? { headers: z.object({ "Retry-After": z.string() }) } : {}),
    };
  }
  return {
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: route.tags ?? [group.name],
    operationId: `${route.method}${openApiPath((group.prefix ?? "") + route.path).replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    ...(route.security ? { security: route.security.map((s: Security) => ({ [s]: [] })) } : {}),
    ...(pathParams || route.query || route.headers
      ? {
          requestParams: {
            ...(pathParams ? { path: pathParams } : {}),
            ...(route.query ? { query: route.query } : {}),
            ...(route.headers ? { header: route.headers } : {}),
          },
        }
      : {}),
    ...(route.body
      ? { requestBody: { required: true, content: { "application/json": { schema: route.body } } } }
      : {}),
    ...(route.websocket ? { "x-websocket": true } : {}),
    responses: responses as ZodOpenApiOperationObject["responses"],
  };
}

export function buildOpenApi(info: OpenApiInfo, groups: RouteGroup[]) {
  const paths: ZodOpenApiPathsObject = {};
  for (const group of groups) {
    for (const route of group.routes) {
      const path = openApiPath((group.prefix ?? "") + route.path);
      paths[path] = { ...paths[path], [route.method]: operation(route, group) };
    }
  }
  return createDocument({
    openapi: "3.1.0",
    info: { title: info.title, version: info.version, description: info.description },
    servers: [{ url: info.baseUrl }],
    tags: groups.map((g) => ({ name: g.name, description: g.description })),
    paths,
    components: { securitySchemes: SECURITY_SCHEMES },
  });
}
