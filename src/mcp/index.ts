/**
 * The MCP server (ARCHITECTURE.md §2, §7): `owlrun-mcp [stdio]` and `owlrun-mcp http`.
 * Door of src/mcp: the composition root calls `runMcpCommand`; devnet and tests use `startMcpHttp`.
 */
import { announceListening, createLogger, onShutdown } from "../shared/index.js";
import { MCP_USAGE, parseMcpArgs } from "./config.js";
import { startMcpHttp } from "./http.js";
import { startMcpStdio } from "./stdio.js";

export { MCP_FLAGS, MCP_USAGE, parseMcpArgs } from "./config.js";
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
    announceListening(running.url);
    return;
  }
  const log = createLogger("mcp");
  const running = startMcpStdio({ ...args.runtime, log });
  onShutdown(() => running.close(), log);
  void running.closed.then(() => process.exit(0));
}
