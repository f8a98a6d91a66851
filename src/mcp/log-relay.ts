/**
 * MCP logging: every line the server logs (to stderr) is also offered to MCP clients as
 * `notifications/message`. A line logged while a tool call runs goes to that call's client (the
 * 2026-07-28 era only accepts it there, at the level the request carries); a line logged in the
 * background (settling change, claiming top-ups) goes to the 2025-era sessions, filtered by the level
 * each chose with `logging/setLevel`. The capability is deprecated by the 2026-07-28 spec (SEP-2577)
 * but still served for the clients that use it; stderr stays the primary log either way.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { LoggingLevel, McpServer, ServerContext } from "@modelcontextprotocol/server";
import type { Logger, LogLevel } from "../shared/index.js";

type Listener = (level: LogLevel, scope: string, data: Record<string, unknown>) => void;

const MCP_LEVEL: Record<LogLevel, LoggingLevel> = {
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
};

export class LogRelay {
  private readonly listeners = new Set<Listener>();
  private readonly request = new AsyncLocalStorage<ServerContext>();

  /** Runs one tool call so that what it logs reaches its own client. */
  within<T>(ctx: ServerContext, fn: () => T): T {
    return this.request.run(ctx, fn);
  }

  /** A logger that writes through `base` and tells every listener. */
  wrap(base: Logger, scope = "mcp"): Logger {
    const emit =
      (level: LogLevel) =>
      (msg: string, fields?: Record<string, unknown>): void => {
        base[level](msg, fields);
        const data = { message: msg, ...fields };
        const ctx = this.request.getStore();
        if (ctx) {
          void ctx.mcpReq.log(MCP_LEVEL[level], data, scope).catch(() => undefined);
          return;
        }
        for (const listener of this.listeners) listener(level, scope, data);
      };
    return {
      debug: emit("debug"),
      info: emit("info"),
      warn: emit("warn"),
      error: emit("error"),
      child: (sub) => this.wrap(base.child(sub), `${scope}:${sub}`),
    };
  }

  /** Sends log lines to one server's client until that server closes. */
  attach(server: McpServer): void {
    const listener: Listener = (level, scope, data) => {
      if (!server.isConnected()) return;
      // The SDK drops lines below the level the client set; a failed send must not break logging.
      server.sendLoggingMessage({ level: MCP_LEVEL[level], logger: scope, data }).catch(() => undefined);
    };
    this.listeners.add(listener);
    const previous = server.server.onclose;
    server.server.onclose = () => {
      this.listeners.delete(listener);
      previous?.();
    };
  }

  get size(): number {
    return this.listeners.size;
  }
}
