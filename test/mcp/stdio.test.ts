/**
 * MCP over stdio with the real SDK clients, spawning the server as a child process: stdout carries
 * only JSON-RPC (logs go to stderr), the 2026-07-28 client, the 2025 handshake of the 1.x SDK, the
 * server starting without a gateway, and the process exiting when the client closes stdin.
 */
import { spawn } from "node:child_process";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport as V1StdioTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { describe, expect, it } from "vitest";
import { TOOL_NAMES } from "../../tools/index.js";
import { tempDir } from "../support/cli-process.js";
import { DEAD_GATEWAY, outcome, stdioParams, waitFor } from "./harness.js";

describe("MCP over stdio", () => {
  it("writes only JSON-RPC to stdout, logs to stderr, and exits when stdin closes", async () => {
    const p = stdioParams(["--data-dir", tempDir("owlrun-stdio-raw-"), "--gateway", DEAD_GATEWAY]);
    const child = spawn(p.command, p.args, { cwd: p.cwd, env: p.env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const send = (msg: unknown) => child.stdin.write(`${JSON.stringify(msg)}\n`);
    send({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    });
    await waitFor(() => out.includes('"id":1') || undefined, 20_000, "initialize result");
    send({ jsonrpc: "2.0", method: "notifications/initialized" });
    send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "models", arguments: {} } });
    await waitFor(() => out.includes('"id":2') || undefined, 10_000, "models result");
    const lines = out.trim().split("\n");
    for (const line of lines) expect(JSON.parse(line).jsonrpc).toBe("2.0");
    const models = JSON.parse(lines.find((l) => l.includes('"id":2'))!);
    expect(models.result.isError).toBe(true);
    expect(models.result.content[0].text).toContain("the gateway configured by --gateway is not answering");
    expect(err).toContain("MCP server on stdio");
    child.stdin.end();
    expect(await exited).toBe(0);
  });

  it("serves a 2026-07-28 client and a 1.x SDK client", async () => {
    const dir = tempDir("owlrun-stdio-");
    const args = ["--data-dir", dir, "--gateway", DEAD_GATEWAY, "--max-per-call", "77"];
    const modern = new Client({ name: "t", version: "0" }, { versionNegotiation: { mode: "auto" } });
    await modern.connect(new StdioClientTransport(stdioParams(args)));
    expect((await modern.listTools()).tools.map((t) => t.name).sort()).toEqual([...TOOL_NAMES].sort());
    const b = outcome(await modern.callTool({ name: "balance", arguments: {} }));
    expect(b.structured).toMatchObject({ total_sats: 0, limits: { per_call_sats: 77 } });
    expect(modern.getInstructions()).toContain("up to 77 sats per call");
    await modern.close();

    const v1 = new V1Client({ name: "v1", version: "0" });
    await v1.connect(new V1StdioTransport(stdioParams(args)));
    expect((await v1.listTools()).tools).toHaveLength(TOOL_NAMES.length);
    const r = await v1.callTool({ name: "send", arguments: { amount_sats: 5 } });
    expect(r.isError).toBe(true);
    expect((r.content as { text: string }[])[0]!.text).toBe(
      "insufficient balance: 0 sats, need 5; use topup",
    );
    await v1.close();
  });
});
