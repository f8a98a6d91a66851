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
const BUSY = "owlrun-test-busy:tiny";
let gwDir: string;
let gw: CliProcess;
let walletMint: CliProcess;
let agent: Agent;
let busy: Agent;
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
  busy = await startAgent(gw.url, { models: [BUSY], rejectWith: "busy" });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: unknown[] };
    return m.data.length > 1 || undefined;
  });
  mcp = await startMcpHttp({
    gatewayUrl: gw.url,
    mintUrl: walletMint.url,
    dataDir: tempDir("owlrun-mcp-l402-"),
    port: 0,
    log: silentLogger,
  });
  c = await connect(mcp);
}, 60_000);

afterAll(async () => {
  await c?.close();
  await mcp?.close();
  await agent?.close();
  await busy?.close();
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

    // A chat whose provider refuses after the invoice was paid: the credential is kept (the gateway
    // released it unserved), and the next chat uses it instead of paying again.
    const refused = outcome(
      await c.client.callTool({
        name: "chat",
        arguments: { prompt: "What is the answer?", model: BUSY, max_tokens: 20 },
      }),
    );
    expect(refused.isError).toBe(true);
    expect(refused.text).toContain("its L402 credential is kept");
    const afterRefused = (await callOk(c.client, "balance")).total_sats;
    expect(afterRefused).toBeLessThan(r.balance_sats); // that invoice was paid
    const reused = await callOk(c.client, "chat", {
      prompt: "What is the answer?",
      model: MODEL,
      max_tokens: 20,
    });
    expect(reused).toMatchObject({ answer: "The answer is 42.", paid_sats: 0, balance_sats: afterRefused });
    // Used once: the chat after it pays a new invoice.
    const third = await callOk(c.client, "chat", {
      prompt: "What is the answer?",
      model: MODEL,
      max_tokens: 20,
    });
    expect(third.paid_sats).toBeGreaterThan(0);
    const served = [r.cost_sats, reused.cost_sats, third.cost_sats].reduce((a, b) => a + b, 0);

    // The gateway's books: the invoices became ecash it holds, earned by the provider and the gateway.
    await agent.close();
    await busy.close();
    await gw.stop();
    const books = await readBooks(`${gwDir}/gateway`, `${gw.url}/mint`);
    expect(books.imbalanceMsat).toBe(0);
    expect(books.earnedMsat).toBe(served * 1000);
    expect(books.ecashMsat).toBe(books.walletMsat);
    expect(books.ecashMsat).toBe(books.earnedMsat);
  });
});
