/**
 * Documents about the MCP server: its server card (SEP-2127 draft, at
 * /.well-known/mcp/server-card.json and /.well-known/mcp.json, with a server.json-compatible core;
 * the static part is the repo's `.well-known/mcp/server-card.json`), /llms.txt, /llms-full.txt and
 * OpenAPI 3.1 for the HTTP mode's own endpoints. Built with the gateway's discovery helpers, from
 * the live tool registrations.
 */
import type { McpServer, ToolAnnotations } from "@modelcontextprotocol/server";
import * as z from "zod";
import { registerTools, type ToolDeps } from "../../tools/index.js";
import {
  buildOpenApi,
  ErrorBodySchema,
  renderLlmsTxt,
  type RouteGroup,
  wellKnownJson,
} from "../shared/discovery/index.js";
import { VERSION } from "../shared/index.js";
import { MCP_ENV_VARS } from "./config.js";
import { SERVER_DESCRIPTION, SERVER_NAME, SERVER_TITLE } from "./server.js";

/** The newest protocol version the server speaks: the first of the static card's list. */
const MODERN_PROTOCOL_VERSION = (wellKnownJson("mcp/server-card.json", "") as { protocolVersions: string[] })
  .protocolVersions[0];

export interface ToolSummary {
  name: string;
  title?: string;
  description?: string;
  annotations?: ToolAnnotations;
  inputSchema?: z.ZodType;
}

/** Name, title, description, annotations and input schema of every tool, read from the registrations. */
export function describeTools(): ToolSummary[] {
  const tools: ToolSummary[] = [];
  const recorder = {
    registerTool(name: string, config: Omit<ToolSummary, "name">) {
      tools.push({ name, ...config });
    },
  };
  registerTools(recorder as unknown as McpServer, {} as ToolDeps);
  return tools;
}

export interface DiscoveryContext {
  /** public base URL, e.g. http://127.0.0.1:8403 */
  baseUrl: string;
  gatewayUrl: string;
  bearerRequired: boolean;
  limits: { perCallSat: number; perDaySat: number };
}

/** The npm package entry of server.json: `npx owlrun-mcp` on stdio, pointed at a gateway. */
export function npmPackage(gatewayUrl?: string) {
  return {
    registryType: "npm",
    registryBaseUrl: "https://registry.npmjs.org",
    identifier: SERVER_NAME,
    version: VERSION,
    runtimeHint: "npx",
    transport: { type: "stdio" },
    packageArguments: [{ type: "positional", value: "stdio", valueHint: "transport" }],
    environmentVariables: MCP_ENV_VARS.map((v) => ({
      name: v.name,
      description: v.description,
      isRequired: false,
      isSecret: "isSecret" in v,
      format: "string",
      ...(v.name === "OWLRUN_GATEWAY_URL" && gatewayUrl
        ? { default: gatewayUrl }
        : "default" in v
          ? { default: v.default }
          : {}),
    })),
  };
}

const toolList = () =>
  describeTools().map((t) => ({ name: t.name, title: t.title, description: t.description }));

/** The card core: the static part from `.well-known/`, the version, the tools and the npm package. */
function cardCore(gatewayUrl?: string) {
  return {
    ...wellKnownJson("mcp/server-card.json", ""),
    version: VERSION,
    serverInfo: { name: SERVER_NAME, title: SERVER_TITLE, version: VERSION },
    tools: toolList(),
    packages: [npmPackage(gatewayUrl)],
  };
}

/** The card `owlrun-mcp http` serves about itself. */
export function serverCard(ctx: DiscoveryContext) {
  const mcpUrl = `${ctx.baseUrl}/mcp`;
  return {
    ...cardCore(ctx.gatewayUrl),
    transport: { type: "streamable-http", endpoint: "/mcp", url: mcpUrl },
    remotes: [{ type: "streamable-http", url: mcpUrl }],
    authentication: ctx.bearerRequired
      ? {
          required: true,
          schemes: ["bearer"],
          description: "Authorization: Bearer <token set with --mcp-token>",
        }
      : { required: false },
    documentation: { llms_txt: `${ctx.baseUrl}/llms.txt`, openapi: `${ctx.baseUrl}/openapi.json` },
  };
}

/**
 * The card a gateway serves: run owlrun-mcp on stdio pointed at that gateway, or (when one is
 * known) connect to a running `owlrun-mcp http`.
 */
export function gatewayServerCard(gatewayUrl: string, mcpUrl?: string) {
  return {
    ...cardCore(gatewayUrl),
    transport: mcpUrl ? { type: "streamable-http", url: mcpUrl } : { type: "stdio" },
    remotes: mcpUrl ? [{ type: "streamable-http", url: mcpUrl }] : [],
    documentation: { llms_txt: `${gatewayUrl}/llms.txt`, openapi: `${gatewayUrl}/openapi.json` },
  };
}

export function llmsTxt(ctx: DiscoveryContext): string {
  return renderLlmsTxt({
    title: SERVER_NAME,
    summary: `${SERVER_DESCRIPTION} MCP over Streamable HTTP at ${ctx.baseUrl}/mcp.`,
    notes: [
      `Connect any MCP client to ${ctx.baseUrl}/mcp (protocol ${MODERN_PROTOCOL_VERSION}; 2025-era clients work too).` +
        (ctx.bearerRequired ? " Send `Authorization: Bearer <token>`." : "") +
        `\nPaid tools spend ecash from the server's local wallet: up to ${ctx.limits.perCallSat} sats per call without the user's confirmation, at most ${ctx.limits.perDaySat} sats a day. Inference is bought from the gateway at ${ctx.gatewayUrl}.`,
      ["Tools:", ...describeTools().map((t) => `- \`${t.name}\`: ${t.description ?? t.title ?? ""}`)].join(
        "\n",
      ),
    ],
    sections: [
      {
        name: "MCP",
        links: [
          {
            title: "MCP endpoint",
            url: `${ctx.baseUrl}/mcp`,
            description: "Streamable HTTP (POST JSON-RPC)",
          },
          {
            title: "Server card",
            url: `${ctx.baseUrl}/.well-known/mcp/server-card.json`,
            description: "name, transport, tools",
          },
          {
            title: "Tools in full",
            url: `${ctx.baseUrl}/llms-full.txt`,
            description: "every tool's arguments",
          },
          {
            title: "OpenAPI",
            url: `${ctx.baseUrl}/openapi.json`,
            description: "the HTTP endpoints of this server",
          },
        ],
      },
      {
        name: "Optional",
        links: [
          {
            title: "Gateway",
            url: `${ctx.gatewayUrl}/llms.txt`,
            description: "the OpenAI-compatible gateway the wallet pays (models, prices, payment flows)",
          },
        ],
      },
    ],
  });
}

/** Every tool with its arguments as JSON Schema, and how to connect. */
export function llmsFullTxt(ctx: DiscoveryContext): string {
  const tools = describeTools().flatMap((t) => [
    `### ${t.name}${t.title ? `: ${t.title}` : ""}`,
    "",
    t.description ?? "",
    "",
    ...(t.annotations ? [`Annotations: \`${JSON.stringify(t.annotations)}\``, ""] : []),
    "```json",
    JSON.stringify(t.inputSchema ? z.toJSONSchema(t.inputSchema, { io: "input" }) : {}, null, 2),
    "```",
    "",
  ]);
  return [
    `# ${SERVER_NAME}: tools in full`,
    "",
    `> ${SERVER_DESCRIPTION}`,
    "",
    "## Connect",
    "",
    "```sh",
    `claude mcp add --transport http owlrun ${ctx.baseUrl}/mcp`,
    `# or on stdio: claude mcp add owlrun -e OWLRUN_GATEWAY_URL=${ctx.gatewayUrl} -- npx owlrun-mcp`,
    "```",
    "",
    "```json",
    JSON.stringify({ mcpServers: { owlrun: { type: "http", url: `${ctx.baseUrl}/mcp` } } }, null, 2),
    "```",
    "",
    `Spending: up to ${ctx.limits.perCallSat} sats per call without confirmation (above that the user confirms, or the call is refused), at most ${ctx.limits.perDaySat} sats a day.`,
    "",
    "## Tools",
    "",
    ...tools,
  ].join("\n");
}

const jsonDoc = (summary: string) => ({
  method: "get" as const,
  summary,
  responses: { 200: { description: summary, schema: z.looseObject({}) } },
});
const textDoc = (summary: string) => ({
  method: "get" as const,
  summary,
  responses: { 200: { description: summary, schema: z.string(), contentType: "text/markdown" } },
});

/** The HTTP mode's own endpoints. */
export const mcpHttpRoutes: RouteGroup = {
  name: "mcp",
  description: "MCP over Streamable HTTP and the documents describing it",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "get",
      path: "/mcp",
      summary: "Server-to-client SSE stream of a 2025-era session (Mcp-Session-Id header)",
      responses: { 200: { description: "SSE stream", schema: z.string(), contentType: "text/event-stream" } },
      errors: { 400: "no session id", 404: "unknown session" },
    },
    {
      method: "delete",
      path: "/mcp",
      summary: "End a 2025-era session (Mcp-Session-Id header)",
      responses: { 200: { description: "session closed" } },
      errors: { 404: "unknown session" },
    },
    {
      method: "post",
      path: "/mcp",
      summary: "MCP Streamable HTTP endpoint (JSON-RPC 2.0 messages)",
      body: z.looseObject({ jsonrpc: z.literal("2.0"), method: z.string() }),
      responses: {
        200: {
          description: "JSON-RPC response, as JSON or an SSE stream",
          schema: z.looseObject({ jsonrpc: z.literal("2.0") }),
          alternatives: { "text/event-stream": z.string() },
        },
        202: { description: "notification accepted" },
      },
      errors: {
        401: "missing or wrong bearer token",
        403: "Host or Origin not allowed (DNS-rebinding protection)",
      },
    },
    { path: "/.well-known/mcp/server-card.json", ...jsonDoc("MCP server card") },
    { path: "/.well-known/mcp.json", ...jsonDoc("MCP server card (alternate path)") },
    { path: "/llms.txt", ...textDoc("llms.txt description of this server") },
    { path: "/llms-full.txt", ...textDoc("Every tool with its arguments") },
    { path: "/openapi.json", ...jsonDoc("This OpenAPI document") },
    { path: "/healthz", ...jsonDoc("Liveness and the MCP URL") },
    { path: "/", ...jsonDoc("Liveness and the MCP URL (same as /healthz)") },
  ],
};

export function openApi(ctx: DiscoveryContext) {
  const doc = buildOpenApi(
    {
      title: `${SERVER_TITLE} MCP server`,
      version: VERSION,
      description: SERVER_DESCRIPTION,
      baseUrl: ctx.baseUrl,
    },
    [
      ctx.bearerRequired
        ? {
            ...mcpHttpRoutes,
            routes: mcpHttpRoutes.routes.map((r) =>
              r.path === "/mcp" ? { ...r, security: ["bearer" as const] } : r,
            ),
          }
        : mcpHttpRoutes,
    ],
  );
  return { ...doc, "x-mcp-tools": describeTools().map((t) => t.name) };
}
