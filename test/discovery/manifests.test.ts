/**
 * The package manifests and the MCP server's own discovery surface: manifest/server.json validates
 * against the MCP registry's schema (2025-12-11, committed under manifest/schema/),
 * manifest/manifest.json against the MCPB 0.3 schema, both agree with package.json and with the
 * tools the running server lists; `owlrun-mcp http` (the built CLI, so `.well-known/` resolves from
 * dist/) serves a valid OpenAPI 3.1, llms.txt, llms-full.txt and its server card.
 */
import { readFileSync } from "node:fs";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mcpbManifest, REGISTRY_NAME, serverJson } from "../../src/mcp/manifests.js";
import { describeTools, mcpHttpRoutes } from "../../src/mcp/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { connect, DEAD_GATEWAY, printedMcpToken } from "../mcp/harness.js";

const readJson = (path: string) =>
  JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), "utf8"));
const pkg = readJson("package.json");
const server = readJson("manifest/server.json");
const bundle = readJson("manifest/manifest.json");
const STALE = "is stale: run `npm run manifests` (it rebuilds both manifests from the code) and commit them";

function validator(schemaPath: string) {
  const ajv = new Ajv({ strict: false, allErrors: true });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv.compile(readJson(schemaPath));
}

let mcp: CliProcess;
let liveTools: string[];

beforeAll(async () => {
  mcp = await startCli(["http", "--port", "0", "--gateway", DEAD_GATEWAY, "--data-dir", tempDir()]);
  const client = await connect({ mcpUrl: `${mcp.url}/mcp`, token: printedMcpToken(mcp.stdout()) });
  liveTools = (await client.client.listTools()).tools.map((t) => t.name).sort();
  await client.close();
}, 30_000);
afterAll(async () => {
  await mcp?.stop();
});

describe("manifest/server.json (MCP registry)", () => {
  it("validates against the registry's server.json schema", () => {
    const validate = validator("manifest/schema/server.schema.2025-12-11.json");
    expect(validate(server), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(server.$schema).toBe(readJson("manifest/schema/server.schema.2025-12-11.json").$id);
    // the validator is real: a broken document fails
    expect(validate({ ...server, name: "no-slash" })).toBe(false);
    expect(validate({ ...server, description: "x".repeat(101) })).toBe(false);
  });

  it("agrees with package.json (mcpName, version) and the npm package runs on stdio via npx", () => {
    expect(pkg.mcpName).toBe(server.name);
    expect(server.name).toBe(REGISTRY_NAME);
    expect(server.version).toBe(pkg.version);
    const npm = server.packages[0];
    expect(npm).toMatchObject({
      registryType: "npm",
      identifier: pkg.name,
      version: pkg.version,
      runtimeHint: "npx",
      transport: { type: "stdio" },
    });
    expect(npm.environmentVariables.map((v: { name: string }) => v.name)).toContain("OWLRUN_GATEWAY_URL");
    expect(server.remotes[0].type).toBe("streamable-http");
    expect(server, `manifest/server.json ${STALE}`).toEqual(serverJson());
  });

  it("the package ships what the runtime reads", () => {
    expect(pkg.files).toEqual(expect.arrayContaining(["dist", ".well-known", "manifest/*.json"]));
  });
});

describe("manifest/manifest.json (MCPB bundle)", () => {
  it("validates against the MCPB 0.3 schema and has the required fields", () => {
    const validate = validator("manifest/schema/mcpb-manifest-v0.3.schema.json");
    expect(validate(bundle), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(validate({ ...bundle, server: { type: "node" } })).toBe(false);
    for (const key of ["manifest_version", "name", "version", "description", "author", "server"])
      expect(bundle[key], key).toBeDefined();
    expect(bundle.version).toBe(pkg.version);
    expect(bundle.server.mcp_config.args).toContain("stdio");
    expect(bundle, `manifest/manifest.json ${STALE}`).toEqual(mcpbManifest());
  });
});

describe("tool lists agree with the live server", () => {
  it("tools/list = the registrations = manifest.json tools = the server card's tools", async () => {
    expect(
      describeTools()
        .map((t) => t.name)
        .sort(),
    ).toEqual(liveTools);
    expect(
      bundle.tools.map((t: { name: string }) => t.name).sort(),
      `manifest/manifest.json tools differ from the live tools/list: ${STALE}`,
    ).toEqual(liveTools);
    const card = (await (await fetch(`${mcp.url}/.well-known/mcp/server-card.json`)).json()) as any;
    expect(card.tools.map((t: { name: string }) => t.name).sort()).toEqual(liveTools);
    expect(card).toMatchObject({
      name: pkg.name,
      version: pkg.version,
      remotes: [{ url: `${mcp.url}/mcp` }],
    });
  });
});

describe("owlrun-mcp http discovery", () => {
  it("serves valid OpenAPI 3.1, llms.txt and llms-full.txt with every tool's arguments", async () => {
    const doc = await (await fetch(`${mcp.url}/openapi.json`)).json();
    const v = new Validator();
    const result = await v.validate(doc as Parameters<Validator["validate"]>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(Object.keys((doc as any).paths)).toEqual(
      expect.arrayContaining(["/mcp", "/llms.txt", "/llms-full.txt", "/.well-known/mcp.json"]),
    );
    const llms = await (await fetch(`${mcp.url}/llms.txt`)).text();
    expect(llms.split("\n")[0]).toBe("# owlrun-mcp");
    expect(llms).toContain(`${mcp.url}/llms-full.txt`);
    const full = await fetch(`${mcp.url}/llms-full.txt`);
    expect(full.headers.get("access-control-allow-origin")).toBe("*");
    const text = await full.text();
    for (const name of liveTools) expect(text).toContain(`### ${name}`);
    expect(text).toContain(`claude mcp add --transport http owlrun ${mcp.url}/mcp`);
    expect(text).toContain('"required": [\n    "prompt"\n  ]');
  });

  it("every documented GET document answers 200, with open CORS", async () => {
    const docs = mcpHttpRoutes.routes.filter((r) => r.method === "get" && r.path !== "/mcp");
    expect(docs.length).toBeGreaterThanOrEqual(6);
    for (const r of docs) {
      const res = await fetch(`${mcp.url}${r.path}`);
      expect(res.status, r.path).toBe(200);
      if (r.path !== "/" && r.path !== "/healthz")
        expect(res.headers.get("access-control-allow-origin"), r.path).toBe("*");
    }
  });
});

describe("docs/integrations.md", () => {
  const md = readFileSync(new URL("../../docs/integrations.md", import.meta.url), "utf8");
  it("has a section per client, with parseable JSON configs pointing at the gateway", () => {
    const sections = md.split("\n").filter((l) => l.startsWith("## "));
    for (const client of [
      "Claude Code",
      "Continue",
      "Cursor",
      "Open WebUI",
      "ChatBox",
      "OpenCode",
      "Python",
      "JavaScript",
    ])
      expect(
        sections.some((s) => s.includes(client)),
        client,
      ).toBe(true);
    const json = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!));
    expect(json.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(json)).toContain("http://127.0.0.1:8402");
    expect(md).toContain("claude mcp add owlrun -- npx owlrun-mcp");
    expect(md).toContain("apiBase: http://127.0.0.1:8402/v1");
  });
});
