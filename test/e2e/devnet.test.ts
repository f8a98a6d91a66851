/**
 * `owlrun-mcp devnet` as a newcomer meets it: one command starts mint, gateway and an embedded
 * provider, prints its URLs and a curl line with a funded X-Cashu token — and that exact request
 * streams an answer and the change. A second run reuses the data; --reset starts clean.
 */
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { connect, printedMcpToken } from "../mcp/harness.js";
import { runCli, startCli, tempDir } from "../support/cli-process.js";

const run = promisify(execFile);

/** A free loopback port: the devnet keeps its mint URL (and so its ecash) only on a stable port. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe("npm run devnet", () => {
  it("prints a curl line that pays for a streamed answer and gets change back; data survives a restart", async () => {
    const dir = tempDir();
    const port = String(await freePort());
    const devnet = await startCli(["devnet", "--port", port, "--data-dir", dir], {}, 60_000);
    let mcpAt: string | undefined;
    try {
      const out = devnet.stdout();
      expect(out).toMatch(/gateway {3}http:\/\/127\.0\.0\.1:\d+/);
      expect(out).toMatch(/mint {6}http:\/\/127\.0\.0\.1:\d+\/mint/);
      expect(out).toMatch(/provider {2}owlrun-[0-9a-f-]+ on embedded: owlrun-test-scripted:tiny/);
      expect(out).toMatch(/demo wallet balance: 750 sats/);
      const curl = /^ {2}(curl .+)$/m.exec(out)![1]!;
      const { stdout } = await run("bash", ["-c", curl]);
      const events = stdout
        .split("\n\n")
        .filter((e) => e.startsWith("data: "))
        .map((e) => e.slice(6));
      expect(events.at(-1)).toBe("[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
      expect(chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("")).toBe(SCRIPTED_ANSWER);
      const change = chunks.find((c) => c.type === "cashu_change");
      expect(change.change_sats).toBe(48);
      expect(change.token).toMatch(/^cashuB/);

      // An agent on the devnet's MCP server pays for a chat from the MCP wallet.
      const mcpUrl = /MCP server \(Streamable HTTP\): (\S+)/.exec(out)![1]!;
      // From a clone (not the published package): the stdio line runs this checkout's built CLI.
      expect(out).toContain(`-- node ${resolve(import.meta.dirname, "../../dist/src/cli.js")}\n`);
      mcpAt = mcpUrl;
      expect(out).toMatch(/its wallet holds 200 sats/);
      const agent = await connect({ mcpUrl, token: printedMcpToken(out) });
      try {
        const tools = (await agent.client.listTools()).tools.map((t) => t.name);
        expect(tools).toEqual(expect.arrayContaining(["chat", "models", "balance", "topup", "withdraw"]));
        // No model named: the gateway's default, the scripted model (not the random one, first by name).
        const info = (await (await fetch(`${devnet.url}/v1/info`)).json()) as any;
        expect(info.default_model).toBe(SCRIPTED_MODEL_ID);
        const answer = (await agent.client.callTool({ name: "chat", arguments: { prompt: "hi" } })) as any;
        expect(answer.isError).toBeFalsy();
        expect(JSON.stringify(answer.structuredContent)).toContain(SCRIPTED_ANSWER);
        const balance = (await agent.client.callTool({ name: "balance", arguments: {} })) as any;
        expect(balance.structuredContent.total_sats).toBe(200 - answer.structuredContent.cost_sats);
        // withdraw works on a devnet: `devnet invoice` makes an invoice the fake backend pays as external.
        expect(out).toContain("owlrun-mcp devnet invoice 100");
        const invoice = await runCli(["devnet", "invoice", "20"]);
        expect(invoice.stdout).toMatch(/^lnbc\w+\n$/);
        const w = (await agent.client.callTool({
          name: "withdraw",
          arguments: { destination: invoice.stdout.trim() },
        })) as any;
        expect(w.isError, JSON.stringify(w.content)).toBeFalsy();
      } finally {
        await agent.close();
      }
    } finally {
      expect(await devnet.stop()).toBe(0);
    }
    // Second run: same data dir, the demo wallet keeps its ecash (no new top-up needed).
    const again = await startCli(["devnet", "--port", port, "--data-dir", dir], {}, 60_000);
    try {
      expect(again.stdout()).toMatch(/demo wallet balance: 700 sats/);
      // Same data dir, same MCP URL: the `claude mcp add` line printed last time still works.
      expect(again.stdout()).toContain(`MCP server (Streamable HTTP): ${mcpAt} `);
    } finally {
      await again.stop();
    }
    const reset = await startCli(["devnet", "--port", port, "--data-dir", dir, "--reset"], {}, 60_000);
    try {
      expect(reset.stdout()).toMatch(/demo wallet balance: 750 sats/);
    } finally {
      await reset.stop();
    }
  }, 120_000);
});
