/**
 * The gateway's discovery surface against the running server: every route the express app answers
 * is in /openapi.json (the failure names the undocumented ones), the document is valid OpenAPI 3.1
 * by a real validator, payment headers, errors and the SSE stream are described, llms.txt follows
 * llmstxt.org, and the .well-known documents carry the real base URL with open CORS.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningGateway } from "../../gateway/index.js";
import { documentedRoutes } from "../../src/shared/discovery/index.js";
import { walkRoutes } from "../support/express-routes.js";
import { startDiscoveryGateway } from "./harness.js";

let gw: RunningGateway;
let doc: any;

beforeAll(async () => {
  gw = await startDiscoveryGateway();
  doc = await (await fetch(`${gw.url}/openapi.json`)).json();
});
afterAll(async () => {
  await gw?.close();
});

/** The mint's catch-all that refuses payment methods other than bolt11 (OpenAPI cannot name a RegExp). */
const ALLOWED_REGEX_ROUTES = ["ALL /mint/^\\/v1\\/(mint|melt)\\/(quote\\/)?[^/]+/"];

describe("openapi.json", () => {
  it("documents every route the running gateway answers (and nothing it does not)", () => {
    const walked = walkRoutes(gw.app);
    const documented = documentedRoutes(gw.gateway.routeGroups());
    const websockets = gw.gateway
      .routeGroups()
      .flatMap((g) => g.routes.filter((r) => r.websocket).map((r) => `GET ${(g.prefix ?? "") + r.path}`));
    const undocumented = walked.routes.filter((r) => !documented.includes(r));
    const phantom = documented.filter((r) => !walked.routes.includes(r) && !websockets.includes(r));
    expect(
      undocumented,
      `undocumented routes: add a RouteDoc next to each handler (see gateway/api/*.ts):\n  ${undocumented.join("\n  ")}`,
    ).toEqual([]);
    expect(phantom, `documented but not served:\n  ${phantom.join("\n  ")}`).toEqual([]);
    expect(walked.regexRoutes).toEqual(ALLOWED_REGEX_ROUTES);
    // the walk is real: it sees the gateway's routes and the mint mounted at /mint
    expect(walked.routes).toContain("POST /v1/chat/completions");
    expect(walked.routes).toContain("POST /mint/v1/swap");
    expect(walked.routes.length).toBeGreaterThan(40);
    // and every documented route is in the served document, with {param} paths
    const served = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${p}`),
    );
    for (const r of documented) expect(served).toContain(r.replace(/:([A-Za-z_]\w*)/g, "{$1}"));
  });

  it("is valid OpenAPI 3.1 by @seriousme/openapi-schema-validator, with the real base URL", async () => {
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    expect(doc.servers).toEqual([{ url: gw.url }]);
  });

  it("describes the payment headers, the error body and the SSE stream", () => {
    const chat = doc.paths["/v1/chat/completions"].post;
    const headerParams = chat.parameters.filter((p: any) => p.in === "header").map((p: any) => p.name);
    expect(headerParams).toContain("X-Cashu");
    expect(Object.keys(chat.responses["200"].headers)).toEqual(
      expect.arrayContaining(["X-Cashu-Change", "X-Cost-Sats", "X-Owlrun-Request-Id"]),
    );
    expect(chat.responses["200"].content["text/event-stream"].schema.$ref).toBe(
      "#/components/schemas/CompletionStream",
    );
    expect(doc.components.schemas.CompletionStream.description).toContain("cashu_change");
    expect(Object.keys(chat.responses["402"].headers)).toContain("WWW-Authenticate");
    expect(chat.security).toEqual([{ cashu: [] }, { bearer: [] }, { l402: [] }]);
    expect(doc.components.securitySchemes.cashu).toMatchObject({
      type: "apiKey",
      in: "header",
      name: "X-Cashu",
    });
    // the request body is the very schema the handler validates with
    expect(chat.requestBody.content["application/json"].schema.required).toEqual(["model", "messages"]);
    for (const status of ["400", "401", "429", "503"]) {
      expect(chat.responses[status].content["application/json"].schema.$ref).toBe(
        "#/components/schemas/Error",
      );
    }
    expect(doc.components.schemas.Error.properties.error.required).toEqual(["message", "type", "code"]);
    // the mint's errors are NUT-00 bodies
    const swap = doc.paths["/mint/v1/swap"].post;
    expect(swap.responses["400"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/MintError",
    );
    expect(doc.paths["/v1/keys/{id}/caps"].post.parameters).toEqual([
      expect.objectContaining({ in: "path", name: "id", required: true }),
    ]);
  });

  it("answers a bad page with the documented error, and the schemas match live answers", async () => {
    const bad = await fetch(`${gw.url}/v1/audit?page=zero`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.type).toBe("invalid_request");
    const groups = gw.gateway.routeGroups();
    // every open GET without parameters: the live body parses with its documented schema
    let checked = 0;
    for (const g of groups) {
      for (const r of g.routes) {
        const path = (g.prefix ?? "") + r.path;
        const ok = r.responses[200];
        if (r.method !== "get" || path.includes(":") || r.security || r.websocket || !ok?.schema) continue;
        if (r.errors?.[404]) continue; // optional documents
        const res = await fetch(`${gw.url}${path}`);
        expect(res.status, path).toBe(200);
        const body =
          ok.contentType && ok.contentType !== "application/json" ? await res.text() : await res.json();
        const parsed = ok.schema.safeParse(body);
        expect(parsed.success, `${path}: ${parsed.error?.message}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(12);
  });
});

describe("llms.txt and .well-known", () => {
  it("llms.txt: one H1, a blockquote summary, link sections with the real base URL, Optional last", async () => {
    const res = await fetch(`${gw.url}/llms.txt`);
    expect(res.headers.get("content-type")).toMatch(/^text\/markdown/);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const text = await res.text();
    const lines = text.split("\n");
    expect(lines[0]).toBe("# Owlrun gateway");
    expect(lines.filter((l) => l.startsWith("# "))).toHaveLength(1);
    expect(lines[2]).toMatch(/^> /);
    const sections = lines.filter((l) => l.startsWith("## "));
    expect(sections).toEqual(["## Docs", "## API", "## Optional"]);
    expect(lines.filter((l) => /^#{3,} /.test(l))).toEqual([]);
    // every entry of every section is a markdown link; GET links answer
    const links = lines.filter((l) => l.startsWith("- "));
    for (const l of links) expect(l).toMatch(/^- \[[^\]]+\]\(http:\/\/127\.0\.0\.1:\d+\/[^)]*\)(: .+)?$/);
    expect(text).toContain(`${gw.url}/llms-full.txt`);
    expect(text).toContain("[POST /v1/chat/completions]");
    for (const url of [`${gw.url}/llms-full.txt`, `${gw.url}/openapi.json`, `${gw.url}/v1/models`]) {
      expect(text).toContain(`(${url})`);
      expect((await fetch(url)).status).toBe(200);
    }
  });

  it("ai-plugin.json and the MCP server card carry the running base URL, with open CORS", async () => {
    const plugin = await fetch(`${gw.url}/.well-known/ai-plugin.json`);
    expect(plugin.headers.get("access-control-allow-origin")).toBe("*");
    const p = (await plugin.json()) as any;
    expect(p).toMatchObject({
      schema_version: "v1",
      name_for_model: "owlrun",
      auth: { type: "none" },
      api: { type: "openapi", url: `${gw.url}/openapi.json` },
    });
    expect(JSON.stringify(p)).not.toContain("{{BASE_URL}}");
    expect((await fetch(p.logo_url)).headers.get("content-type")).toMatch(/^image\/svg\+xml/);

    const a = await fetch(`${gw.url}/.well-known/mcp/server-card.json`);
    expect(a.headers.get("access-control-allow-origin")).toBe("*");
    const card = (await a.json()) as any;
    expect(await (await fetch(`${gw.url}/.well-known/mcp.json`)).json()).toEqual(card);
    expect(card).toMatchObject({ name: "owlrun-mcp", capabilities: { tools: {} } });
    const pkg = card.packages[0];
    expect(pkg).toMatchObject({ identifier: "owlrun-mcp", runtimeHint: "npx", transport: { type: "stdio" } });
    expect(pkg.environmentVariables.find((v: any) => v.name === "OWLRUN_GATEWAY_URL").default).toBe(gw.url);
    expect(card.tools.map((t: any) => t.name)).toContain("chat");

    const preflight = await fetch(`${gw.url}/.well-known/ai-plugin.json`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
  });
});
