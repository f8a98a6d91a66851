/**
 * MCP over Streamable HTTP at /mcp, plus the discovery documents.
 *
 * - 2026-07-28 requests go to the SDK's per-request handler (`createMcpHandler`, stateless).
 * - 2025-era clients (for example the 1.x `@modelcontextprotocol/sdk` client) get classic
 *   sessions, so the server can push requests to them (spend confirmations by elicitation).
 * - Bound to 127.0.0.1 by default; the Host header must name an allowed host (DNS-rebinding
 *   protection). /mcp requires `Authorization: Bearer <token>` unless the operator opted out, which
 *   only a loopback bind allows (token.ts). A browser's request (it carries Origin) is served, with
 *   CORS, only for an origin the operator listed exactly: a page on localhost:any-port is no client.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { toNodeHandler } from "@modelcontextprotocol/node";
import {
  createMcpHandler,
  isInitializeRequest,
  isLegacyRequest,
  localhostAllowedHostnames,
  type McpServer,
  validateHostHeader,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import { OPEN_CORS } from "../shared/discovery/index.js";
import {
  closeServer,
  createLogger,
  DEFAULT_HOST,
  errorMessage,
  listen,
  type Logger,
} from "../shared/index.js";
import { type DiscoveryContext, llmsFullTxt, llmsTxt, openApi, serverCard } from "./discovery.js";
import { type McpRuntime, type McpRuntimeOptions, openRuntime } from "./runtime.js";
import { buildServer } from "./server.js";
import { resolveMcpToken } from "./token.js";

export interface McpHttpOptions extends McpRuntimeOptions {
  /** bind address (default 127.0.0.1) */
  host?: string;
  /** port (default 8403; 0 picks a free one) */
  port?: number;
  /**
   * the bearer token /mcp requires: default the one kept in `<dataDir>/mcp-token` (made on first
   * start); `false` opts out (loopback binds only)
   */
  token?: string | false;
  /** browser origins (scheme://host:port) allowed to call /mcp with CORS; default none */
  allowedOrigins?: string[];
  /** extra Host names accepted (needed when bound to a non-loopback address behind a name) */
  allowedHosts?: string[];
  /** the URL clients reach this server at, for the discovery documents (default: the listening URL) */
  publicUrl?: string;
  /** an already opened runtime (devnet, tests); closed with the server when `ownsRuntime` */
  runtime?: McpRuntime;
}

export interface RunningMcpHttp {
  /** base URL, e.g. http://127.0.0.1:8403 */
  url: string;
  /** the MCP endpoint, `${url}/mcp` */
  mcpUrl: string;
  /** the bearer token /mcp requires (undefined when the operator opted out) */
  token?: string;
  runtime: McpRuntime;
  close(): Promise<void>;
}

const MAX_BODY = 4 * 1024 * 1024;
const MAX_LEGACY_SESSIONS = 100;
const LEGACY_IDLE_MS = 30 * 60_000;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

const jsonRpcError = (status: number, code: number, message: string) =>
  Response.json({ jsonrpc: "2.0", error: { code, message }, id: null }, { status });

/** Classic (2025-era) Streamable HTTP sessions, one McpServer each. */
class LegacySessions {
  private readonly sessions = new Map<
    string,
    { transport: WebStandardStreamableHTTPServerTransport; server: McpServer; seen: number }
  >();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly factory: () => McpServer,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async handle(request: Request): Promise<Response> {
    const sid = request.headers.get("mcp-session-id");
    if (sid) {
      const s = this.sessions.get(sid);
      if (!s) return jsonRpcError(404, -32001, "Session not found");
      s.seen = Date.now();
      return s.transport.handleRequest(request);
    }
    if (request.method !== "POST")
      return jsonRpcError(400, -32000, "Bad Request: no valid session ID provided");
    const body: unknown = await request
      .clone()
      .json()
      .catch(() => undefined);
    if (!isInitializeRequest(body))
      return jsonRpcError(400, -32000, "Bad Request: no valid session ID provided");
    if (this.sessions.size >= MAX_LEGACY_SESSIONS) this.evictOldest();
    const server = this.factory();
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.sessions.set(id, { transport, server, seen: Date.now() });
      },
      onsessionclosed: (id) => {
        this.drop(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) this.sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    return transport.handleRequest(request, { parsedBody: body });
  }

  private drop(id: string) {
    const s = this.sessions.get(id);
    if (!s) return;
    this.sessions.delete(id);
    void s.server
      .close()
      .catch((err) => this.log.debug("closing a session failed", { err: errorMessage(err) }));
  }

  private evictOldest() {
    let oldest: [string, number] | undefined;
    for (const [id, s] of this.sessions) if (!oldest || s.seen < oldest[1]) oldest = [id, s.seen];
    if (oldest) this.drop(oldest[0]);
  }

  private sweep() {
    const cutoff = Date.now() - LEGACY_IDLE_MS;
    for (const [id, s] of this.sessions) if (s.seen < cutoff) this.drop(id);
  }

  async close() {
    clearInterval(this.sweeper);
    await Promise.allSettled([...this.sessions.values()].map((s) => s.server.close()));
    this.sessions.clear();
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash("sha256").update(given).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Starts the HTTP server; resolves once it listens. */
export async function startMcpHttp(opts: McpHttpOptions): Promise<RunningMcpHttp> {
  const log = opts.log ?? createLogger("mcp-http");
  const host = opts.host ?? DEFAULT_HOST;
  const loopback = LOOPBACK.has(host);
  const token = resolveMcpToken(opts.token, opts.dataDir, loopback, host);
  if (!token)
    log.warn("MCP over HTTP without a bearer token (--no-mcp-token): any local process can spend the wallet");
  const allowedOrigins = new Set((opts.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/+$/, "")));
  const ownsRuntime = !opts.runtime;
  const runtime = opts.runtime ?? openRuntime({ ...opts, log });
  const extraHosts = (opts.allowedHosts ?? []).map((h) => h.toLowerCase());
  const specificBind = host !== "0.0.0.0" && host !== "::" ? [host.includes(":") ? `[${host}]` : host] : [];
  // Host names a request may name: loopback names when bound there, else the bind address and the configured names.
  const allowedHosts: string[] | undefined = loopback
    ? [...localhostAllowedHostnames(), ...extraHosts]
    : extraHosts.length > 0 || specificBind.length > 0
      ? [...specificBind, ...extraHosts]
      : undefined;
  if (!allowedHosts) log.warn(`bound to ${host} without --allowed-host: the Host header is not checked`);

  const factory = () => buildServer(runtime.deps, runtime.logs);
  const modern = createMcpHandler(factory, {
    legacy: "reject",
    onerror: (err) => log.debug("mcp request error", { err: errorMessage(err) }),
  });
  const legacy = new LegacySessions(factory, log);
  const mcp = toNodeHandler(
    {
      fetch: async (request: Request) =>
        (await isLegacyRequest(request, undefined, { maxRequestBodySize: MAX_BODY }))
          ? legacy.handle(request)
          : modern.fetch(request),
    },
    {
      maxRequestBodySize: MAX_BODY,
      onerror: (err) => log.warn("mcp handler failed", { err: errorMessage(err) }),
    },
  );

  // Filled in once the server listens (the base URL is known then).
  const discovery = {} as DiscoveryContext;
  const send = (res: ServerResponse, status: number, type: string, body: string, headers = {}) => {
    res.writeHead(status, { "content-type": type, ...headers });
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, body: unknown, headers = {}) =>
    send(res, status, "application/json", JSON.stringify(body, null, 2), headers);
  const errorJson = (res: ServerResponse, status: number, type: string, message: string, headers = {}) =>
    sendJson(res, status, { error: { message, type, code: status } }, headers);

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (allowedHosts) {
      const host = validateHostHeader(req.headers.host, allowedHosts);
      if (!host.ok) return errorJson(res, 403, "forbidden_host", host.message);
    }
    if (path === "/mcp") {
      const origin = req.headers.origin;
      if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) {
        return errorJson(
          res,
          403,
          "forbidden_origin",
          `browser origin ${origin} may not use this MCP server (the operator lists origins with --allowed-origin)`,
        );
      }
      if (origin) {
        res.setHeader("access-control-allow-origin", origin);
        res.setHeader("vary", "Origin");
        res.setHeader("access-control-expose-headers", "mcp-session-id, mcp-protocol-version");
      }
      if (req.method === "OPTIONS") {
        res.writeHead(204, {
          "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
          "access-control-allow-headers":
            "content-type, authorization, mcp-session-id, mcp-protocol-version, last-event-id",
          "access-control-max-age": "600",
        });
        return res.end();
      }
      if (token) {
        const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
        if (!sameSecret(given, token)) {
          return errorJson(res, 401, "invalid_token", "missing or wrong bearer token", {
            "www-authenticate": 'Bearer realm="owlrun-mcp"',
          });
        }
      }
      return mcp(req, res);
    }
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        ...OPEN_CORS,
        "access-control-max-age": "600",
      });
      return res.end();
    }
    if (req.method !== "GET" && req.method !== "HEAD")
      return errorJson(res, 405, "method_not_allowed", `${req.method} ${path} is not allowed`);
    if (path === "/.well-known/mcp/server-card.json" || path === "/.well-known/mcp.json")
      return sendJson(res, 200, serverCard(discovery), OPEN_CORS);
    if (path === "/llms.txt")
      return send(res, 200, "text/markdown; charset=utf-8", llmsTxt(discovery), OPEN_CORS);
    if (path === "/llms-full.txt")
      return send(res, 200, "text/markdown; charset=utf-8", llmsFullTxt(discovery), OPEN_CORS);
    if (path === "/openapi.json") return sendJson(res, 200, openApi(discovery), OPEN_CORS);
    if (path === "/" || path === "/healthz")
      return sendJson(res, 200, {
        status: "ok",
        mcp: `${discovery.baseUrl}/mcp`,
        llms_txt: `${discovery.baseUrl}/llms.txt`,
      });
    return errorJson(res, 404, "not_found", `no route ${req.method} ${path}; MCP is at /mcp`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      log.error("http handler failed", { err: errorMessage(err) });
      if (!res.headersSent) errorJson(res, 500, "internal_error", "internal error");
      else res.end();
    });
  });
  let url: string;
  try {
    url = await listen(server, host, opts.port ?? 8403);
  } catch (err) {
    await legacy.close();
    if (ownsRuntime) await runtime.close();
    throw err;
  }
  const baseUrl = (opts.publicUrl ?? url).replace(/\/+$/, "");
  Object.assign(discovery, {
    baseUrl,
    gatewayUrl: runtime.gateway.baseUrl,
    bearerRequired: !!token,
    limits: runtime.wallet.limits,
  } satisfies DiscoveryContext);
  log.info("MCP over Streamable HTTP", { mcp: `${baseUrl}/mcp`, gateway: runtime.gateway.baseUrl });
  let closing: Promise<void> | undefined;
  return {
    url,
    mcpUrl: `${url}/mcp`,
    token,
    runtime,
    close() {
      closing ??= (async () => {
        await modern.close().catch(() => undefined);
        await legacy.close();
        await closeServer(server);
        if (ownsRuntime) await runtime.close();
      })();
      return closing;
    },
  };
}
