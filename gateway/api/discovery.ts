/**
 * Discovery for agents (402ai's "Machine-Readable Docs"): /openapi.json, /llms.txt, /llms-full.txt,
 * /.well-known/ai-plugin.json and the MCP server card, all built from the route records and filled
 * with this gateway's base URL. Public documents: open CORS.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type NextFunction, type Request, type Response, Router } from "express";
import * as z from "zod";
import {
  buildOpenApi,
  ErrorBodySchema,
  OPEN_CORS,
  openApiPath,
  renderLlmsTxt,
  type RouteGroup,
  WELL_KNOWN_DIR,
  wellKnownJson,
} from "../../src/shared/discovery/index.js";
import { VERSION } from "../../src/shared/index.js";
import { ApiError } from "./errors.js";
import { llmsFullTxt } from "./llms-full.js";

export const GATEWAY_TITLE = "Owlrun gateway";
export const GATEWAY_SUMMARY =
  "OpenAI-compatible LLM inference paid per request with Bitcoin ecash (Cashu X-Cashu tokens), or from rc_/sk- accounts; providers are Owlrun nodes, paid in sats.";

export interface DiscoveryDeps {
  /** every route group the server answers (gateway, mint, these documents) */
  groups: () => RouteGroup[];
  /** the public base URL: configured, else the listening URL, else from the request */
  baseUrl: (req: Request) => string;
  /** a model online now, for the examples */
  model: () => string | undefined;
  mintUrl: () => string | undefined;
  /** the owlrun-mcp server card that points at this gateway (given by the composition root) */
  mcpServerCard?: (gatewayUrl: string) => unknown;
}

const Json = z.looseObject({});
const text = (summary: string, contentType = "text/markdown") => ({
  method: "get" as const,
  summary,
  responses: { 200: { description: summary, schema: z.string(), contentType } },
});
const json = (summary: string) => ({
  method: "get" as const,
  summary,
  responses: { 200: { description: summary, schema: Json } },
});

export const discoveryRoutes: RouteGroup = {
  name: "discovery",
  description: "Machine-readable documents for agents (open CORS)",
  errorSchema: ErrorBodySchema,
  routes: [
    { path: "/openapi.json", ...json("This OpenAPI 3.1 document") },
    { path: "/llms.txt", ...text("llms.txt: what this service is, with links") },
    { path: "/llms-full.txt", ...text("The payment flows step by step, with curl examples") },
    { path: "/.well-known/ai-plugin.json", ...json("AI plugin manifest (OpenAI plugin format, as 402ai)") },
    { path: "/.well-known/owlrun.svg", ...text("Logo", "image/svg+xml") },
    {
      path: "/.well-known/mcp/server-card.json",
      ...json("MCP server card of owlrun-mcp, the MCP server that pays this gateway"),
      errors: { 404: "not published by this gateway" },
    },
    {
      path: "/.well-known/mcp.json",
      ...json("MCP server card (alternate path)"),
      errors: { 404: "not published by this gateway" },
    },
  ],
};

/** llms.txt: the summary, then links built from the route records (GETs link straight to the data). */
export function gatewayLlmsTxt(baseUrl: string, groups: RouteGroup[], hasMcpCard: boolean): string {
  const link = (g: RouteGroup, r: RouteGroup["routes"][number]) => {
    const path = openApiPath((g.prefix ?? "") + r.path);
    const direct = r.method === "get" && !path.includes("{") && !r.websocket && !r.security;
    return {
      title: `${r.method.toUpperCase()} ${path}`,
      url: direct
        ? `${baseUrl}${path}`
        : `${baseUrl}/openapi.json#/paths/${encodeURIComponent(path.replaceAll("~", "~0").replaceAll("/", "~1"))}/${r.method}`,
      description: r.summary,
    };
  };
  const api = groups.filter((g) => g.name !== "discovery" && g.name !== "mint");
  return renderLlmsTxt({
    title: GATEWAY_TITLE,
    summary: GATEWAY_SUMMARY,
    notes: [
      `Base URL for OpenAI clients: ${baseUrl}/v1 (model names are Ollama tags). Pay each request with \`X-Cashu: <cashu token>\` (change comes back in \`X-Cashu-Change\`, or as the last SSE event), or send \`Authorization: Bearer <rc_ key | sk- key | cashu token>\`. Prices are in sats: GET /v1/models.`,
      'Errors are JSON `{"error":{"message","type","code"}}`; nothing is charged for refused or malformed requests.',
      "The request id in `X-Owlrun-Request-Id` is a bearer capability: anyone holding it can claim that request's change at GET /v1/cashu/change/{id} until the change is redeemed at the mint (then 410). Keep it as secret as the token itself.",
    ],
    sections: [
      {
        name: "Docs",
        links: [
          {
            title: "Payment flows in full",
            url: `${baseUrl}/llms-full.txt`,
            description: "step by step, with curl",
          },
          {
            title: "OpenAPI 3.1",
            url: `${baseUrl}/openapi.json`,
            description: "every route, schemas, payment headers",
          },
          { title: "AI plugin manifest", url: `${baseUrl}/.well-known/ai-plugin.json` },
          ...(hasMcpCard
            ? [
                {
                  title: "MCP server card",
                  url: `${baseUrl}/.well-known/mcp/server-card.json`,
                  description: "owlrun-mcp: an MCP server with a local wallet that pays this gateway",
                },
              ]
            : []),
        ],
      },
      { name: "API", links: api.flatMap((g) => g.routes.map((r) => link(g, r))) },
      {
        name: "Optional",
        links: groups.filter((g) => g.name === "mint").flatMap((g) => g.routes.map((r) => link(g, r))),
      },
    ],
  });
}

function cors(req: Request, res: Response, next: NextFunction) {
  res.set(OPEN_CORS);
  if (req.method === "OPTIONS") return void res.status(204).end();
  next();
}

export function discoveryRouter(deps: DiscoveryDeps): Router {
  const r = Router();
  for (const path of discoveryRoutes.routes.map((d) => d.path)) r.use(path, cors);
  // The routes are fixed once the server runs: build the document once per base URL (the last one).
  let cached: { baseUrl: string; doc: unknown } | undefined;
  r.get("/openapi.json", (req, res) => {
    const baseUrl = deps.baseUrl(req);
    if (cached?.baseUrl !== baseUrl) {
      const info = { title: GATEWAY_TITLE, version: VERSION, description: GATEWAY_SUMMARY, baseUrl };
      cached = { baseUrl, doc: buildOpenApi(info, deps.groups()) };
    }
    res.json(cached.doc);
  });
  r.get("/llms.txt", (req, res) => {
    res
      .type("text/markdown; charset=utf-8")
      .send(gatewayLlmsTxt(deps.baseUrl(req), deps.groups(), !!deps.mcpServerCard));
  });
  r.get("/llms-full.txt", (req, res) => {
    res.type("text/markdown; charset=utf-8").send(
      llmsFullTxt({
        baseUrl: deps.baseUrl(req),
        model: deps.model() ?? "qwen2.5:0.5b",
        mintUrl: deps.mintUrl(),
        groups: deps.groups(),
      }),
    );
  });
  r.get("/.well-known/ai-plugin.json", (req, res) => {
    res.json(wellKnownJson("ai-plugin.json", deps.baseUrl(req)));
  });
  r.get("/.well-known/owlrun.svg", (_req, res) => {
    res.type("image/svg+xml").send(readFileSync(join(WELL_KNOWN_DIR, "owlrun.svg")));
  });
  const card = (req: Request, res: Response) => {
    if (!deps.mcpServerCard)
      throw new ApiError(404, "not_found", "this gateway publishes no MCP server card");
    res.json(deps.mcpServerCard(deps.baseUrl(req)));
  };
  r.get("/.well-known/mcp/server-card.json", card);
  r.get("/.well-known/mcp.json", card);
  return r;
}
