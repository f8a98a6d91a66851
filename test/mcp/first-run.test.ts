/**
 * The first run of `npx owlrun-mcp` in a user's MCP client, over stdio with the real SDK client:
 * a configured gateway that is down is named with the variable that set it (no devnet advice), an
 * invalid URL does not kill the server (its tools answer with the configuration error, naming the
 * variable actually used), the deprecated OWLRUN_GATEWAY still works and says so, and the
 * capabilities `initialize` announces match the server card.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { describe, expect, it } from "vitest";
import { TOOL_NAMES } from "../../tools/index.js";
import { tempDir } from "../support/cli-process.js";
import { DEAD_GATEWAY, outcome, stdioParams } from "./harness.js";

/** stdio params with only the given OWLRUN_* variables set. */
function params(env: Record<string, string>) {
  const p = stdioParams(["--data-dir", tempDir("owlrun-first-run-")]);
  const base: Record<string, string> = { ...p.env };
  for (const k of Object.keys(base)) if (k.startsWith("OWLRUN_")) delete base[k];
  return { ...p, env: { ...base, OWLRUN_LOG_LEVEL: "warn", ...env } };
}

async function withServer(env: Record<string, string>, fn: (c: Client) => Promise<void>) {
  const client = new Client({ name: "first-run", version: "0" }, { versionNegotiation: { mode: "auto" } });
  await client.connect(new StdioClientTransport(params(env)));
  try {
    await fn(client);
  } finally {
    await client.close();
  }
}

describe("first run of the MCP server", () => {
  it("a configured gateway that is down: names the URL and OWLRUN_GATEWAY_URL, no devnet advice", async () => {
    await withServer({ OWLRUN_GATEWAY_URL: DEAD_GATEWAY }, async (client) => {
      expect(client.getInstructions()).toContain(`Gateway: ${DEAD_GATEWAY} (set by OWLRUN_GATEWAY_URL)`);
      for (const name of ["models", "chat"] as const) {
        const r = outcome(
          await client.callTool({ name, arguments: name === "chat" ? { prompt: "hi" } : {} }),
        );
        expect(r.isError, name).toBe(true);
        expect(r.text).toContain(
          `no gateway at ${DEAD_GATEWAY}: the gateway configured by OWLRUN_GATEWAY_URL`,
        );
        expect(r.text).toContain("change OWLRUN_GATEWAY_URL");
        expect(r.text).not.toContain("devnet");
      }
    });
  });

  it("an invalid URL: the server starts and its tools answer with the error naming the variable used", async () => {
    await withServer({ OWLRUN_GATEWAY_URL: "127.0.0.1:19001" }, async (client) => {
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
      expect(client.getInstructions()).toContain(
        'Configuration error: invalid OWLRUN_GATEWAY_URL "127.0.0.1:19001"',
      );
      const r = outcome(await client.callTool({ name: "models", arguments: {} }));
      expect(r.isError).toBe(true);
      expect(r.text).toContain('invalid OWLRUN_GATEWAY_URL "127.0.0.1:19001"');
      expect(r.text).toContain("did you mean http://127.0.0.1:19001?");
      expect(r.text).not.toContain("--gateway");
      // The local wallet still answers.
      expect(outcome(await client.callTool({ name: "balance", arguments: {} })).isError).toBe(false);
    });
  });

  it("the deprecated OWLRUN_GATEWAY still works and names itself", async () => {
    await withServer({ OWLRUN_GATEWAY: DEAD_GATEWAY }, async (client) => {
      const r = outcome(await client.callTool({ name: "models", arguments: {} }));
      expect(r.text).toContain("configured by OWLRUN_GATEWAY (deprecated: use OWLRUN_GATEWAY_URL)");
    });
  });

  it("initialize announces the capabilities the server card lists (the tool list never changes)", async () => {
    const card = JSON.parse(
      readFileSync(resolve(import.meta.dirname, "../../.well-known/mcp/server-card.json"), "utf8"),
    );
    await withServer({ OWLRUN_GATEWAY_URL: DEAD_GATEWAY }, async (client) => {
      expect(client.getServerCapabilities()?.tools).toEqual(card.capabilities.tools);
    });
  });
});
