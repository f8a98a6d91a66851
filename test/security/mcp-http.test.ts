/**
 * Issue 15 item 8: a web page (or any local process) on the user's machine must not be able to
 * spend the MCP wallet. `owlrun-mcp http` requires a bearer token on /mcp by default (made on
 * first start, kept 0600 in the data dir, printed in the client config lines), answers no CORS
 * for origins the operator did not list, and refuses a non-loopback bind without a token.
 * On the old code a page at http://localhost:9999 got a session and its origin reflected in CORS.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { TOOL_NAMES } from "../../tools/index.js";
import { startCli, tempDir } from "../support/cli-process.js";
import { connect, DEAD_GATEWAY, printedMcpToken, rawRequest } from "../mcp/harness.js";

const INIT = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-06-18",
    capabilities: {},
    clientInfo: { name: "evil-page", version: "1" },
  },
});
const MCP_HEADERS = { "content-type": "application/json", accept: "application/json, text/event-stream" };

let dir: string;
let mcp: RunningMcpHttp;

beforeAll(async () => {
  dir = tempDir("owlrun-sec-mcp-");
  mcp = await startMcpHttp({ gatewayUrl: DEAD_GATEWAY, dataDir: dir, port: 0, log: silentLogger });
});
afterAll(async () => {
  await mcp?.close();
});

describe("MCP over HTTP, default settings", () => {
  it("requires a bearer token, made on first start and kept 0600 in the data dir", async () => {
    const anonymous = await rawRequest(mcp.mcpUrl, { method: "POST", headers: MCP_HEADERS, body: INIT });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers["mcp-session-id"]).toBeUndefined();
    const file = join(dir, "mcp-token");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8").trim()).toBe(mcp.token);
    expect(mcp.token!.length).toBeGreaterThanOrEqual(40);
    const ok = await connect(mcp);
    expect((await ok.client.listTools()).tools).toHaveLength(TOOL_NAMES.length);
    await ok.close();
    // The same token after a restart: configured clients keep working.
    const again = await startMcpHttp({ gatewayUrl: DEAD_GATEWAY, dataDir: dir, port: 0, log: silentLogger });
    expect(again.token).toBe(mcp.token);
    await again.close();
  });

  it("a page on another localhost port gets no session and no CORS, even holding the token", async () => {
    for (const origin of ["http://localhost:9999", "http://127.0.0.1:1234", "null"]) {
      const post = await rawRequest(mcp.mcpUrl, {
        method: "POST",
        headers: { ...MCP_HEADERS, origin, authorization: `Bearer ${mcp.token}` },
        body: INIT,
      });
      expect(post.status, origin).toBe(403);
      expect(post.headers["access-control-allow-origin"]).toBeUndefined();
      expect(post.headers["mcp-session-id"]).toBeUndefined();
      const preflight = await rawRequest(mcp.mcpUrl, {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST" },
      });
      expect(preflight.status).toBe(403);
      expect(preflight.headers["access-control-allow-origin"]).toBeUndefined();
    }
  });

  it("an origin the operator listed exactly gets CORS (with the token still required)", async () => {
    const listed = await startMcpHttp({
      gatewayUrl: DEAD_GATEWAY,
      dataDir: tempDir("owlrun-sec-mcp-origin-"),
      port: 0,
      allowedOrigins: ["http://localhost:6274"],
      log: silentLogger,
    });
    try {
      const pre = await rawRequest(listed.mcpUrl, {
        method: "OPTIONS",
        headers: { origin: "http://localhost:6274", "access-control-request-method": "POST" },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers["access-control-allow-origin"]).toBe("http://localhost:6274");
      const noToken = await rawRequest(listed.mcpUrl, {
        method: "POST",
        headers: { ...MCP_HEADERS, origin: "http://localhost:6274" },
        body: INIT,
      });
      expect(noToken.status).toBe(401);
      const other = await rawRequest(listed.mcpUrl, {
        method: "POST",
        headers: { ...MCP_HEADERS, origin: "http://localhost:6275", authorization: `Bearer ${listed.token}` },
        body: INIT,
      });
      expect(other.status).toBe(403);
    } finally {
      await listed.close();
    }
  });
});

describe("opting out", () => {
  it("--no-mcp-token is refused beyond loopback, accepted on loopback", async () => {
    await expect(
      startMcpHttp({
        gatewayUrl: DEAD_GATEWAY,
        dataDir: tempDir(),
        host: "0.0.0.0",
        port: 0,
        token: false,
        log: silentLogger,
      }),
    ).rejects.toThrow(/without a bearer token/);
    const open = await startMcpHttp({
      gatewayUrl: DEAD_GATEWAY,
      dataDir: tempDir(),
      port: 0,
      token: false,
      log: silentLogger,
    });
    try {
      expect(open.token).toBeUndefined();
      const c = await connect(open);
      await c.close();
    } finally {
      await open.close();
    }
  });

  it("`owlrun-mcp http` prints the token in its client config lines; a non-loopback opt-out does not start", async () => {
    const cli = await startCli(["http", "--port", "0", "--gateway", DEAD_GATEWAY, "--data-dir", tempDir()]);
    try {
      const out = cli.stdout();
      const token = printedMcpToken(out)!;
      expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
      expect(out).toContain(
        `claude mcp add --transport http owlrun ${cli.url}/mcp --header "Authorization: Bearer ${token}"`,
      );
      const c = await connect({ mcpUrl: `${cli.url}/mcp`, token });
      await c.close();
    } finally {
      await cli.stop();
    }
    await expect(
      startCli([
        "http",
        "--port",
        "0",
        "--host",
        "0.0.0.0",
        "--no-mcp-token",
        "--gateway",
        DEAD_GATEWAY,
        "--data-dir",
        tempDir(),
      ]),
    ).rejects.toThrow(/without a bearer token/);
  });
});
