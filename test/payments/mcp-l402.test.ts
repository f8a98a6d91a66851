/**
 * The MCP `chat` tool against an L402-only gateway (`--payment-methods l402`, X-Cashu refused):
 * the wallet (ecash at its own mint) reads the 402 challenge, melts ecash to pay the invoice over
 * (fake) Lightning, and retries with the L402 credential. Real MCP client, gateway and mint CLIs,
 * a provider speaking the Owlrun protocol; the gateway's books balance at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { readBooks } from "../support/payments.js";
import { callOk, connect, type Connected, outcome, waitFor } from "../mcp/harness.js";

const MODEL = "owlrun-test-scripted:tiny";
let gwDir: string;
let gw: CliProcess;
let walletMint: CliProcess;
let agent: Agent;
let mcp: RunningMcpHttp;
let c: Connected;

beforeAll(async () => {
  gwDir = tempDir();
  [gw, walletMint] = await Promise.all([
    startCli([
      "gateway",
      "--port",
      "0",
      "--data-dir",
      gwDir,
      "--fake-delay-ms",
      "20",
      "--payment-methods",
      "l402",
    ]),
    startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]),
  ]);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: unknown[] };
    return m.data.length > 0 || undefined;
  });
  mcp = await startMcpHttp({
    gatewayUrl: gw.url,
    mintUrl: walletMint.url,
    dataDir: tempDir("owlrun-mcp-l402-"),
    port: 0,
    log: silentLogger,
  });
  c = await connect(mcp.mcpUrl);
}, 60_000);

afterAll(async () => {
  await c?.close();
  await mcp?.close();
  await agent?.close();
  await Promise.all([gw?.child.exitCode === null ? gw.stop() : undefined, walletMint?.stop()]);
});

describe("chat over L402", () => {
  it("pays the gateway's L402 invoice by melting ecash and gets the answer", async () => {
    const top = await callOk(c.client, "topup", { amount_sats: 100 });
    expect(top.mint).toBe(walletMint.url);
    const status = outcome(
      await c.client.callTool({
        name: "topup_status",
        arguments: { quote: top.quote, wait: true, timeout_seconds: 20 },
      }),
    );
    expect(status.structured).toMatchObject({ state: "claimed" });
    const before = (await callOk(c.client, "balance")).total_sats;

    const r = await callOk(c.client, "chat", { prompt: "What is the answer?", model: MODEL, max_tokens: 20 });
    expect(r).toMatchObject({ answer: "The answer is 42.", model: MODEL, change_sats: 0 });
    expect(r.cost_sats).toBeGreaterThanOrEqual(2);
    expect(r.paid_sats).toBeGreaterThanOrEqual(r.cost_sats); // the invoice plus the mint's routing fee
    expect(r.balance_sats).toBe(before - r.paid_sats);
    expect((await callOk(c.client, "balance")).total_sats).toBe(r.balance_sats);

    // The gateway's books: the invoice became ecash it holds, earned by the provider and the gateway.
    await agent.close();
    await gw.stop();
    const books = await readBooks(`${gwDir}/gateway`, `${gw.url}/mint`);
    expect(books.imbalanceMsat).toBe(0);
    expect(books.earnedMsat).toBe(r.cost_sats * 1000);
    expect(books.ecashMsat).toBe(books.walletMsat);
    expect(books.ecashMsat).toBe(books.earnedMsat);
  });
});
