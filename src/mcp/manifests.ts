/**
 * The package manifests, built from the code they describe: `manifest/server.json` (MCP registry,
 * schema 2025-12-11) and `manifest/manifest.json` (MCPB bundle, manifest_version 0.3). The files
 * are committed; `npm run manifests` rewrites them and test/discovery fails while they are stale.
 */
import { VERSION } from "../shared/index.js";
import { MCP_ENV_VARS } from "./config.js";
import { describeTools, npmPackage } from "./discovery.js";
import { SERVER_DESCRIPTION, SERVER_NAME, SERVER_TITLE } from "./server.js";

/** The registry name; package.json `mcpName` must equal it (npm ownership check). */
export const REGISTRY_NAME = "io.github.owlrun/owlrun-mcp";
export const SERVER_SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";

export function serverJson() {
  return {
    $schema: SERVER_SCHEMA,
    name: REGISTRY_NAME,
    title: SERVER_TITLE,
    description: SERVER_DESCRIPTION.slice(0, 100),
    version: VERSION,
    packages: [npmPackage()],
    // A self-hosted `owlrun-mcp http` (default port 8403).
    remotes: [
      {
        type: "streamable-http",
        url: "http://127.0.0.1:{port}/mcp",
        variables: { port: { description: "port of `owlrun-mcp http`", default: "8403" } },
      },
    ],
  };
}

/** MCPB user_config keys for the env vars a desktop user may want to set. */
const USER_CONFIG = {
  gateway_url: { env: "OWLRUN_GATEWAY_URL", type: "string", title: "Gateway URL" },
  max_per_call: { env: "OWLRUN_MAX_PER_CALL", type: "number", title: "Sats per call without confirmation" },
  max_per_day: { env: "OWLRUN_MAX_PER_DAY", type: "number", title: "Sats per day at most" },
  gateway_api_key: { env: "OWLRUN_GATEWAY_API_KEY", type: "string", title: "Gateway API key (optional)" },
} as const;

export function mcpbManifest() {
  const envVar = (name: string) => MCP_ENV_VARS.find((v) => v.name === name)!;
  return {
    manifest_version: "0.3",
    name: SERVER_NAME,
    display_name: SERVER_TITLE,
    version: VERSION,
    description: SERVER_DESCRIPTION,
    long_description:
      "An MCP server with a local Cashu wallet: it buys LLM inference from an Owlrun gateway per request, tops up over Lightning, and sends or withdraws ecash, within per-call and per-day spending limits.",
    author: { name: "Owlrun contributors" },
    license: "MIT",
    keywords: ["cashu", "ecash", "bitcoin", "lightning", "llm", "inference"],
    server: {
      type: "node",
      entry_point: "dist/src/cli.js",
      mcp_config: {
        command: "node",
        args: ["${__dirname}/dist/src/cli.js", "stdio"],
        env: Object.fromEntries(
          Object.entries(USER_CONFIG).map(([key, c]) => [c.env, `\${user_config.${key}}`]),
        ),
      },
    },
    tools: describeTools().map((t) => ({ name: t.name, description: t.description ?? t.title ?? t.name })),
    tools_generated: false,
    compatibility: { platforms: ["darwin", "linux", "win32"], runtimes: { node: ">=20.0.0" } },
    user_config: Object.fromEntries(
      Object.entries(USER_CONFIG).map(([key, c]) => {
        const v = envVar(c.env);
        const def = "default" in v ? v.default : undefined;
        return [
          key,
          {
            type: c.type,
            title: c.title,
            description: v.description,
            required: false,
            ...("isSecret" in v ? { sensitive: true } : {}),
            ...(def !== undefined ? { default: c.type === "number" ? Number(def) : def } : {}),
          },
        ];
      }),
    ),
  };
}
