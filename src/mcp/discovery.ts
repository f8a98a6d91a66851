/**
 * Documents the HTTP mode serves about itself: the MCP server card (SEP-2127 draft, served at
 * /.well-known/mcp/server-card.json and /.well-known/mcp.json with a server.json-compatible core),
 * /llms.txt (llmstxt.org) and a small OpenAPI 3.1 description of the HTTP endpoints.
 */
import type { McpServer, ToolAnnotations } from "@modelcontextprotocol/server";
import { registerTools, TOOL_NAMES, type ToolDeps } from "../../tools/index.js";
import { VERSION } from "../shared/index.js";
import { SERVER_DESCRIPTION, SERVER_NAME, SERVER_TITLE } from "./server.js";

export const MODERN_PROTOCOL_VERSION = "2026-07-28";

export interface ToolSummary {
  name: string;
  title?: string;
  description?: string;
  annotations?: ToolAnnotations;
}

/** Name, title, description and annotations of every tool, read from the registrations themselves. */
export function describeTools(): ToolSummary[] {
  const tools: ToolSummary[] = [];
  const recorder = {
    registerTool(name: string, config: Omit<ToolSummary, "name">) {
      tools.push({
        name,
        title: config.title,
        description: config.description,
        annotations: config.annotations,
      });
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

export function serverCard(ctx: DiscoveryContext) {
  const mcpUrl = `${ctx.baseUrl}/mcp`;
  return {
    $schema: "https://static.modelcontextprotocol.io/schemas/mcp-server-card/v1.json",
    name: SERVER_NAME,
    title: SERVER_TITLE,
    version: VERSION,
    description: SERVER_DESCRIPTION,
    serverInfo: { name: SERVER_NAME, title: SERVER_TITLE, version: VERSION },
    transport: { type: "streamable-http", endpoint: "/mcp", url: mcpUrl },
    remotes: [{ type: "streamable-http", url: mcpUrl }],
    protocolVersions: [MODERN_PROTOCOL_VERSION, "2025-11-25", "2025-06-18", "2025-03-26"],
    capabilities: { tools: { listChanged: false } },
    authentication: ctx.bearerRequired
      ? {
          required: true,
          schemes: ["bearer"],
          description: "Authorization: Bearer <token set with --mcp-token>",
        }
      : { required: false },
    tools: describeTools().map((t) => ({ name: t.name, title: t.title, description: t.description })),
    documentation: { llms_txt: `${ctx.baseUrl}/llms.txt`, openapi: `${ctx.baseUrl}/openapi.json` },
    packages: [
      {
        registryType: "npm",
        identifier: "owlrun-mcp",
        version: VERSION,
        runtimeHint: "npx",
        transport: { type: "stdio" },
      },
    ],
  };
}

export function llmsTxt(ctx: DiscoveryContext): string {
  const tools = describeTools();
  return [
    `# ${SERVER_NAME}`,
    "",
    `> ${SERVER_DESCRIPTION} MCP over Streamable HTTP at ${ctx.baseUrl}/mcp.`,
    "",
    `Connect any MCP client to ${ctx.baseUrl}/mcp (protocol ${MODERN_PROTOCOL_VERSION}; 2025-era clients work too).` +
      (ctx.bearerRequired ? " Send `Authorization: Bearer <token>`." : ""),
    `Paid tools spend ecash from the server's local wallet: up to ${ctx.limits.perCallSat} sats per call without the user's confirmation, at most ${ctx.limits.perDaySat} sats a day. Inference is bought from the gateway at ${ctx.gatewayUrl}.`,
    "",
    "Tools:",
    ...tools.map((t) => `- \`${t.name}\`: ${t.description ?? t.title ?? ""}`),
    "",
    "## MCP",
    `- [MCP endpoint](${ctx.baseUrl}/mcp): Streamable HTTP (POST JSON-RPC)`,
    `- [Server card](${ctx.baseUrl}/.well-known/mcp/server-card.json): name, transport, tools`,
    `- [OpenAPI](${ctx.baseUrl}/openapi.json): the HTTP endpoints of this server`,
    "",
    "## Optional",
    `- [Gateway](${ctx.gatewayUrl}/v1/models): the OpenAI-compatible gateway the wallet pays (models and prices)`,
    "",
  ].join("\n");
}

export function openApi(ctx: DiscoveryContext) {
  const doc = (summary: string, type: string) => ({
    get: {
      summary,
      responses: { "200": { description: summary, content: { [type]: { schema: { type: "object" } } } } },
    },
  });
  return {
    openapi: "3.1.0",
    info: { title: `${SERVER_TITLE} MCP server`, version: VERSION, description: SERVER_DESCRIPTION },
    servers: [{ url: ctx.baseUrl }],
    paths: {
      "/mcp": {
        post: {
          summary: "MCP Streamable HTTP endpoint (JSON-RPC 2.0 messages)",
          ...(ctx.bearerRequired ? { security: [{ bearer: [] }] } : {}),
          requestBody: {
            required: true,
            content: { "application/json": { schema: { type: "object", required: ["jsonrpc", "method"] } } },
          },
          responses: {
            "200": {
              description: "JSON-RPC response, as JSON or an SSE stream",
              content: { "application/json": {}, "text/event-stream": {} },
            },
            "202": { description: "notification accepted" },
            "401": { description: "missing or wrong bearer token" },
            "403": { description: "Host or Origin not allowed (DNS-rebinding protection)" },
          },
        },
      },
      "/.well-known/mcp/server-card.json": doc("MCP server card", "application/json"),
      "/.well-known/mcp.json": doc("MCP server card (alternate path)", "application/json"),
      "/llms.txt": doc("llms.txt description of this server", "text/markdown"),
    },
    ...(ctx.bearerRequired
      ? { components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } } }
      : {}),
    "x-mcp-tools": TOOL_NAMES,
  };
}
