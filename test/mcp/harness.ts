/**
 * Helpers for the MCP suites: real SDK clients (v2 in both protocol eras, and the 1.x
 * `@modelcontextprotocol/sdk` client) connected to an in-process `startMcpHttp`, and small readers
 * for tool results.
 */
import { request as httpRequest } from "node:http";
import { resolve } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1HttpTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { expect } from "vitest";

export type Elicit = "accept" | "decline" | "none";

export interface ConnectOptions {
  /** modern: 2026-07-28 (versionNegotiation auto); legacy: the 2025 handshake */
  era?: "modern" | "legacy";
  /** how the client answers elicitation; "none" declares no elicitation capability */
  elicit?: Elicit;
  headers?: Record<string, string>;
}

export interface Connected {
  client: Client;
  /** messages of the elicitation requests the client received */
  elicitations: string[];
  close(): Promise<void>;
}

/** An MCP HTTP server to connect to: its URL, or a running server with the bearer token /mcp requires. */
export type McpTarget = string | { mcpUrl: string; token?: string };

const targetOf = (t: McpTarget) => (typeof t === "string" ? { mcpUrl: t, token: undefined } : t);
const authHeaders = (token: string | undefined): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

/** The bearer token `owlrun-mcp http` (or devnet) printed in its client config lines. */
export function printedMcpToken(stdout: string): string | undefined {
  return /MCP bearer token[^:]*: (\S+)/.exec(stdout)?.[1];
}

export async function connect(target: McpTarget, opts: ConnectOptions = {}): Promise<Connected> {
  const { mcpUrl, token } = targetOf(target);
  const headers = { ...authHeaders(token), ...opts.headers };
  const elicit = opts.elicit ?? "none";
  const client = new Client(
    { name: "owlrun-test", version: "0.0.0" },
    {
      capabilities: elicit === "none" ? {} : { elicitation: { form: {} } },
      ...(opts.era === "legacy" ? {} : { versionNegotiation: { mode: "auto" as const } }),
    },
  );
  const elicitations: string[] = [];
  if (elicit !== "none") {
    client.setRequestHandler("elicitation/create", async (req) => {
      elicitations.push(String((req.params as { message?: string }).message));
      return elicit === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" };
    });
  }
  const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
    requestInit: Object.keys(headers).length ? { headers } : undefined,
  });
  await client.connect(transport);
  return { client, elicitations, close: () => client.close() };
}

/** The 1.x SDK client (spec up to 2025-11-25), optionally answering elicitation. */
export async function connectV1(target: McpTarget, elicit: Elicit = "none") {
  const { mcpUrl, token } = targetOf(target);
  const client = new V1Client(
    { name: "owlrun-test-v1", version: "0.0.0" },
    { capabilities: elicit === "none" ? {} : { elicitation: {} } },
  );
  const elicitations: string[] = [];
  if (elicit !== "none") {
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      elicitations.push(req.params.message);
      return elicit === "accept" ? { action: "accept", content: { confirm: true } } : { action: "decline" };
    });
  }
  await client.connect(
    new V1HttpTransport(new URL(mcpUrl), { requestInit: { headers: authHeaders(token) } }),
  );
  return { client, elicitations, close: () => client.close() };
}

export interface ToolOutcome {
  isError: boolean;
  text: string;
  structured: any;
  content: any[];
}

/** Reads a tool result: joined text blocks, structured content, error flag. */
export function outcome(result: unknown): ToolOutcome {
  const r = result as { isError?: boolean; content?: any[]; structuredContent?: unknown };
  const content = r.content ?? [];
  return {
    isError: r.isError === true,
    text: content
      .filter((c) => c.type === "text")
      .map((c) => c.text as string)
      .join("\n"),
    structured: r.structuredContent,
    content,
  };
}

/** Calls a tool and expects success; returns the structured content. */
export async function callOk(client: Client, name: string, args: Record<string, unknown> = {}): Promise<any> {
  const o = outcome(await client.callTool({ name, arguments: args }));
  expect(o.isError, `${name} failed: ${o.text}`).toBe(false);
  return o.structured;
}

export async function callText(client: Client, name: string, args: Record<string, unknown> = {}) {
  return outcome(await client.callTool({ name, arguments: args }));
}

/** A raw HTTP request with a chosen Host header (fetch does not let tests set it). */
export function rawRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? "GET", headers: opts.headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** A port nothing listens on: a gateway that is down. */
export const DEAD_GATEWAY = "http://127.0.0.1:9";

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 10_000,
  what = "condition",
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const ROOT = resolve(import.meta.dirname, "../..");
/** The built CLI, as `npx owlrun-mcp` runs it (`npm test` builds first). */
const CLI = resolve(ROOT, "dist/src/cli.js");

/** How a test spawns `owlrun-mcp stdio` (the SDK's StdioClientTransport parameters). */
export function stdioParams(args: string[], env: Record<string, string> = {}) {
  return {
    command: process.execPath,
    args: [CLI, "stdio", ...args],
    cwd: ROOT,
    env: { ...(process.env as Record<string, string>), OWLRUN_LOG_LEVEL: "info", ...env },
    stderr: "pipe" as const,
  };
}
