/**
 * MCP over stdio (what Claude Code runs). stdout carries only the protocol: logs go to stderr, and
 * stray console output is sent there too. The connection serves both protocol eras.
 */
import { serveStdio } from "@modelcontextprotocol/server/stdio";
import { createLogger, errorMessage, type Logger } from "../shared/index.js";
import { type McpRuntimeOptions, openRuntime } from "./runtime.js";
import { buildServer } from "./server.js";

export interface RunningMcpStdio {
  /** resolves when the client closed the connection (stdin ended) or close() was called */
  closed: Promise<void>;
  close(): Promise<void>;
}

/** Keeps stdout for JSON-RPC: anything a dependency prints with console.log goes to stderr. */
function guardStdout(): void {
  const toStderr = (...args: unknown[]) => console.error(...args);
  console.log = toStderr;
  console.info = toStderr;
  console.debug = toStderr;
}

export function startMcpStdio(opts: McpRuntimeOptions): RunningMcpStdio {
  guardStdout();
  const log: Logger = opts.log ?? createLogger("mcp");
  const runtime = openRuntime({ ...opts, log });
  const handle = serveStdio(() => buildServer(runtime.deps, runtime.logs), {
    onerror: (err) => log.debug("stdio transport error", { err: errorMessage(err) }),
  });
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await handle.close().catch(() => undefined);
      await runtime.close();
      resolveClosed();
    })();
    return closing;
  };
  process.stdin.once("end", () => void close());
  process.stdin.once("close", () => void close());
  log.info("MCP server on stdio", { gateway: runtime.gateway.baseUrl });
  return { closed, close };
}
