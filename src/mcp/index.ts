/**
 * The MCP server (ARCHITECTURE.md §2, §7): `owlrun-mcp [stdio]` and `owlrun-mcp http`.
 * Door of src/mcp: the composition root calls `runMcpCommand`; devnet and tests use `startMcpHttp`.
 */
import { announceListening, createLogger, onShutdown } from "../shared/index.js";
import { MCP_USAGE, parseMcpArgs } from "./config.js";
import { startMcpHttp } from "./http.js";
import { startMcpStdio } from "./stdio.js";

export { MCP_FLAGS, MCP_USAGE, parseMcpArgs } from "./config.js";
export { loadOrCreateMcpToken, MCP_TOKEN_FILE } from "./token.js";

/** How to point an MCP client at `mcpUrl` (with its bearer token, when one is required). */
export function mcpClientConfigLines(name: string, mcpUrl: string, token: string | undefined): string[] {
  const header = token ? ` --header "Authorization: Bearer ${token}"` : "";
  const headers = token ? `,"headers":{"Authorization":"Bearer ${token}"}` : "";
  return [
    token
      ? `MCP bearer token (kept 0600 in the data dir's mcp-token): ${token}`
      : "MCP without a bearer token (--no-mcp-token)",
    `  claude mcp add --transport http ${name} ${mcpUrl}${header}`,
    `  JSON: {"mcpServers":{"${name}":{"type":"http","url":"${mcpUrl}"${headers}}}}`,
  ];
}
export {
  describeTools,
  gatewayServerCard,
  llmsTxt,
  mcpHttpRoutes,
  npmPackage,
  serverCard,
} from "./discovery.js";
export { MCP_ENV_VARS } from "./config.js";
export { type McpHttpOptions, type RunningMcpHttp, startMcpHttp } from "./http.js";
export { type McpRuntime, type McpRuntimeOptions, openRuntime } from "./runtime.js";
export { buildServer, instructions, SERVER_NAME } from "./server.js";
export { type RunningMcpStdio, startMcpStdio } from "./stdio.js";

/**
 * Runs `owlrun-mcp stdio …` or `owlrun-mcp http …` (argv without the command word). Resolves once
 * the server is up: http prints `listening <url>` and stops on SIGINT/SIGTERM; stdio serves until
 * the client closes stdin, then exits.
 */
export async function runMcpCommand(command: "stdio" | "http", argv: string[]): Promise<void> {
  const args = parseMcpArgs(argv);
  if (args.help) {
    (command === "stdio" ? process.stderr : process.stdout).write(MCP_USAGE);
    return;
  }
  if (command === "http") {
    const log = createLogger("mcp-http");
    const running = await startMcpHttp({ ...args.runtime, ...args.http, log });
    onShutdown(() => running.close(), log);
    process.stdout.write(`MCP endpoint ${running.mcpUrl}\n`);
    process.stdout.write(`${mcpClientConfigLines("owlrun", running.mcpUrl, running.token).join("\n")}\n`);
    announceListening(running.url);
    return;
  }
  const log = createLogger("mcp");
  const running = startMcpStdio({ ...args.runtime, log });
  onShutdown(() => running.close(), log);
  void running.closed.then(() => process.exit(0));
}
