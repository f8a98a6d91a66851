/**
 * The MCP surface over Streamable HTTP (in-process `startMcpHttp`), with no gateway running:
 * the tool list and its schemas (snapshotted: a schema change fails until the snapshot is updated
 * with `npx vitest run test/mcp -u`), the server starting anyway and its tools naming the way out,
 * the 1.x SDK client, DNS-rebinding protection, the bearer token and the discovery documents.
 */
import { resolve } from "node:path";
import { format, resolveConfig } from "prettier";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { TOOL_NAMES } from "../../tools/index.js";
import { tempDir } from "../support/cli-process.js";
import { callOk, callText, connect, connectV1, DEAD_GATEWAY, rawRequest } from "./harness.js";

let mcp: RunningMcpHttp;

beforeAll(async () => {
  mcp = await startMcpHttp({
    gatewayUrl: DEAD_GATEWAY,
    dataDir: tempDir("owlrun-mcp-surface-"),
    port: 0,
    maxPerCallSat: 1000,
    maxPerDaySat: 10_000,
    log: silentLogger,
  });
});
afterAll(async () => {
  await mcp?.close();
});

describe("tool surface", () => {
  it("lists exactly the contract's tools, with schemas and honest annotations, in both protocol eras", async () => {
    const modern = await connect(mcp);
    const legacy = await connect(mcp, { era: "legacy" });
    const { tools } = await modern.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    expect((await legacy.client.listTools()).tools).toEqual(tools);

    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const t of tools) {
      expect(t.inputSchema.type, t.name).toBe("object");
      expect(t.outputSchema?.type, t.name).toBe("object");
      expect(t.description?.length, t.name).toBeGreaterThan(20);
      expect(t.annotations, t.name).toBeDefined();
    }
    for (const name of ["models", "balance"]) {
      expect(byName[name]!.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    }
    for (const name of ["send", "withdraw"]) {
      expect(byName[name]!.annotations).toMatchObject({
        readOnlyHint: false,
        destructiveHint: true,
        openWorldHint: true,
      });
    }
    // topup only creates an invoice: nothing leaves the wallet.
    expect(byName.topup!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false });
    expect(byName.chat!.annotations).toMatchObject({ openWorldHint: true, idempotentHint: false });
    expect(byName.chat!.inputSchema.required).toEqual(["prompt"]);
    expect(byName.withdraw!.inputSchema.required).toEqual(["destination"]);
    expect(byName.receive!.inputSchema.required).toEqual(["token"]);
    expect(byName.topup!.inputSchema.properties).toHaveProperty("amount_sats");
    await Promise.all([modern.close(), legacy.close()]);
  });

  it("output schemas use anyOf with null, never type arrays (Gemini and OpenAPI subsets reject them)", async () => {
    const { client, close } = await connect(mcp);
    const { tools } = await client.listTools();
    const typeArrays: string[] = [];
    const walk = (node: unknown, path: string) => {
      if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
      if (!node || typeof node !== "object") return;
      for (const [k, v] of Object.entries(node)) {
        if (k === "type" && Array.isArray(v)) typeArrays.push(path);
        walk(v, `${path}.${k}`);
      }
    };
    for (const t of tools) walk(t.outputSchema, t.name);
    expect(typeArrays).toEqual([]);
    const chat = tools.find((t) => t.name === "chat")!.outputSchema as any;
    expect(chat.properties.finish_reason).toEqual({ anyOf: [{ type: "string" }, { type: "null" }] });
    await close();
  });

  it("matches the snapshot of every name, annotation and JSON schema", async () => {
    const { client, close } = await connect(mcp);
    const { tools } = await client.listTools();
    const surface = tools
      .map((t) => ({
        name: t.name,
        title: t.title,
        description: t.description,
        annotations: t.annotations,
        inputSchema: t.inputSchema,
        outputSchema: t.outputSchema,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
    // Formatted as Prettier would (npm run format touches every JSON file in the repo).
    const file = resolve(import.meta.dirname, "__snapshots__/tool-surface.json");
    const json = await format(JSON.stringify(surface, null, 2), {
      ...(await resolveConfig(file)),
      filepath: file,
    });
    await expect(json).toMatchFileSnapshot(file);
    await close();
  });
});

describe("without a gateway", () => {
  it("starts, and the gateway tools answer with the way out", async () => {
    const { client, close } = await connect(mcp);
    for (const [name, args] of [
      ["models", {}],
      ["chat", { prompt: "hello" }],
    ] as const) {
      const r = await callText(client, name, args);
      expect(r.isError, name).toBe(true);
      // Nothing configured (the default URL): both ways out, spelled out for the user.
      expect(r.text).toContain(`no gateway at ${DEAD_GATEWAY}: no gateway is configured`);
      expect(r.text).toContain("runs `npx owlrun-mcp devnet` in a terminal");
      expect(r.text).toContain("OWLRUN_GATEWAY_URL=<gateway URL>");
    }
    const topup = await callText(client, "topup", { amount_sats: 100 });
    expect(topup.isError).toBe(true);
    expect(topup.text).toContain("no gateway at");
    expect(topup.text).toContain("OWLRUN_MINT_URL");

    const balance = await callOk(client, "balance");
    expect(balance).toMatchObject({ total_sats: 0, mints: [], spent_today_sats: 0 });
    expect(balance.limits).toEqual({ per_call_sats: 1000, per_day_sats: 10_000 });
    const empty = await callText(client, "send", { amount_sats: 40 });
    expect(empty).toMatchObject({ isError: true, text: "insufficient balance: 0 sats, need 40; use topup" });
    const bad = await callText(client, "receive", { token: "not-a-cashu-token" });
    expect(bad.isError).toBe(true);
    expect(bad.text).toContain("not a cashu token");
    await close();
  });

  it("serves clients of the 1.x SDK (@modelcontextprotocol/sdk)", async () => {
    const v1 = await connectV1(mcp);
    const { tools } = await v1.client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    const r = await v1.client.callTool({ name: "balance", arguments: {} });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ total_sats: 0 });
    expect((r.content as { type: string; text: string }[])[0]!.text).toMatch(/^balance: 0 sats/);
    await v1.close();
  });
});

describe("HTTP", () => {
  it("refuses other Host names and foreign browser origins (DNS rebinding)", async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" });
    const evil = await rawRequest(mcp.mcpUrl, {
      method: "POST",
      headers: { host: "evil.example:80", "content-type": "application/json" },
      body,
    });
    expect(evil.status).toBe(403);
    const origin = await rawRequest(mcp.mcpUrl, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body,
    });
    expect(origin.status).toBe(403);
    const card = await rawRequest(`${mcp.url}/.well-known/mcp.json`, { headers: { host: "evil.example" } });
    expect(card.status).toBe(403);
  });

  it("serves the same server card at both well-known paths, llms.txt and openapi.json, with open CORS", async () => {
    const a = await fetch(`${mcp.url}/.well-known/mcp/server-card.json`);
    const b = await fetch(`${mcp.url}/.well-known/mcp.json`);
    expect(a.headers.get("access-control-allow-origin")).toBe("*");
    const card = (await a.json()) as any;
    expect(await b.json()).toEqual(card);
    expect(card).toMatchObject({
      name: "owlrun-mcp",
      serverInfo: { name: "owlrun-mcp" },
      transport: { type: "streamable-http", endpoint: "/mcp", url: mcp.mcpUrl },
      remotes: [{ type: "streamable-http", url: mcp.mcpUrl }],
      authentication: { required: true },
    });
    expect(card.tools.map((t: { name: string }) => t.name).sort()).toEqual([...TOOL_NAMES].sort());

    const llms = await fetch(`${mcp.url}/llms.txt`);
    expect(llms.headers.get("content-type")).toMatch(/^text\/markdown/);
    const text = await llms.text();
    expect(text.split("\n")[0]).toBe("# owlrun-mcp");
    expect(text.split("\n")[2]).toMatch(/^> /);
    expect(text).toContain(`${mcp.url}/mcp`);
    expect(text).toContain("- `chat`:");
    expect(text).toContain("## Optional");

    const openapi = (await (await fetch(`${mcp.url}/openapi.json`)).json()) as any;
    expect(openapi.openapi).toBe("3.1.0");
    expect(openapi.servers[0].url).toBe(mcp.url);
    expect(Object.keys(openapi.paths)).toContain("/mcp");

    const missing = await fetch(`${mcp.url}/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as any).error.type).toBe("not_found");
  });

  it("requires the bearer token when one is set", async () => {
    const secured = await startMcpHttp({
      gatewayUrl: DEAD_GATEWAY,
      dataDir: tempDir("owlrun-mcp-token-"),
      port: 0,
      token: "s3cret-token",
      log: silentLogger,
    });
    try {
      const denied = await fetch(secured.mcpUrl, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
      });
      expect(denied.status).toBe(401);
      expect(denied.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await expect(connect(secured, { headers: { authorization: "Bearer wrong" } })).rejects.toThrow();
      const ok = await connect(secured, { headers: { authorization: "Bearer s3cret-token" } });
      expect((await ok.client.listTools()).tools).toHaveLength(TOOL_NAMES.length);
      await ok.close();
      const card = (await (await fetch(`${secured.url}/.well-known/mcp.json`)).json()) as any;
      expect(card.authentication).toMatchObject({ required: true, schemes: ["bearer"] });
    } finally {
      await secured.close();
    }
  });
});
