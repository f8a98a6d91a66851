/**
 * One `owlrun-mcp devnet` (child process: bundled mint, gateway, embedded provider, MCP over HTTP)
 * met by every client a user brings, for what the other suites do not already cover: the `openai`
 * client's model list and stream, the `ollama` client on the gateway's Ollama routes, a cashu-ts
 * wallet reading change from the Owlrun stream format by raw fetch, and MCP SDK clients over stdio
 * and HTTP topping up, chatting, checking the balance and withdrawing.
 */
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { callOk, connect, printedMcpToken, stdioParams } from "../mcp/harness.js";
import { externalInvoice } from "../support/blinded.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { fundedPurse, type Purse } from "../support/purse.js";

let devnet: CliProcess;
let gatewayUrl: string;
let mintUrl: string;
let mcpUrl: string;
let purse: Purse;

const token = (amount: number) => purse.token(amount);
const receive = (t: string) => purse.receive(t);

beforeAll(async () => {
  devnet = await startCli(["devnet", "--port", "0", "--data-dir", tempDir()], {}, 60_000);
  const out = devnet.stdout();
  gatewayUrl = /gateway {3}(http:\/\/\S+)/.exec(out)![1]!;
  mintUrl = /mint {6}(http:\/\/\S+)/.exec(out)![1]!;
  mcpUrl = /MCP server \(Streamable HTTP\): (\S+)/.exec(out)![1]!;
  purse = await fundedPurse(mintUrl, 300);
}, 90_000);
afterAll(async () => {
  expect(await devnet?.stop()).toBe(0);
});

describe("devnet with the clients users bring", () => {
  it("openai: lists the model with both pricing shapes and streams an answer with change", async () => {
    const list = await new OpenAI({ baseURL: `${gatewayUrl}/v1`, apiKey: "unused" }).models.list();
    const model = list.data.find((m) => m.id === SCRIPTED_MODEL_ID) as unknown as Record<string, any>;
    expect(model.pricing.per_m_output_usd).toBeGreaterThan(0);
    expect(model.routecat_pricing.output_per_1m_tokens_sats).toBeGreaterThan(0);

    const client = new OpenAI({
      baseURL: `${gatewayUrl}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(20) },
    });
    const stream = await client.chat.completions.create({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    let change = { token: "", change_sats: 0 };
    let cost = 0;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) cost = (chunk.usage as unknown as { cost: { sats: number } }).cost.sats;
      if ((chunk as any).type === "cashu_change") change = chunk as any;
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    expect(change.change_sats).toBe(20 - cost);
    expect(await receive(change.token)).toBe(20 - cost);
  });

  it("ollama: the gateway's Ollama routes serve the embedded provider, paid with X-Cashu", async () => {
    const ollama = new Ollama({ host: gatewayUrl, headers: { "X-Cashu": await token(20) } });
    expect((await ollama.list()).models.map((m) => m.name)).toContain(SCRIPTED_MODEL_ID);
    const stream = await ollama.chat({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    let last: any;
    for await (const part of stream) {
      text += part.message.content;
      last = part;
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    expect(last).toMatchObject({ done: true, eval_count: 6 });
    expect(await receive(last.cashu_change)).toBe(20 - last.cost.sats);
  });

  it("raw fetch in the Owlrun stream format: answer events, done with usage, then the cashu_change event", async () => {
    const res = await fetch(`${gatewayUrl}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-cashu": await token(15),
        "x-stream-format": "owlrun",
      },
      body: JSON.stringify({
        model: SCRIPTED_MODEL_ID,
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const parsed = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = parsed.filter((e) => e.done === false).map((e) => e.message.content);
    expect(text.join("")).toBe(SCRIPTED_ANSWER);
    const done = parsed.find((e) => e.done === true);
    expect(done.usage.completion_tokens).toBe(6);
    const change = parsed.at(-1);
    expect(change).toMatchObject({ type: "cashu_change", change_sats: 15 - done.usage.cost.sats });
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("MCP over stdio: topup over (fake) Lightning, chat, balance and withdraw against the devnet gateway", async () => {
    const client = new Client({ name: "owlrun-e2e", version: "0.0.0" });
    await client.connect(
      new StdioClientTransport(
        stdioParams(["--data-dir", tempDir("owlrun-e2e-stdio-"), "--gateway", gatewayUrl]),
      ),
    );
    try {
      const top = await callOk(client, "topup", { amount_sats: 300 });
      expect(top.mint).toBe(mintUrl);
      const claimed = await callOk(client, "topup_status", {
        quote: top.quote,
        wait: true,
        timeout_seconds: 30,
      });
      expect(claimed).toMatchObject({ state: "claimed", balance_sats: 300 });
      const chat = await callOk(client, "chat", { prompt: "hi", model: SCRIPTED_MODEL_ID });
      expect(JSON.stringify(chat)).toContain(SCRIPTED_ANSWER);
      expect((await callOk(client, "balance")).total_sats).toBe(300 - chat.cost_sats);
      const paid = await callOk(client, "withdraw", { destination: externalInvoice(100) });
      expect(paid).toMatchObject({ paid_sats: 100, state: "paid" });
      expect((await callOk(client, "balance")).total_sats).toBe(300 - chat.cost_sats - 100 - paid.fee_sats);
    } finally {
      await client.close();
    }
  });

  it("MCP over HTTP (the devnet's own server): topup and withdraw move its wallet's balance", async () => {
    const agent = await connect({ mcpUrl, token: printedMcpToken(devnet.stdout()) });
    try {
      const before = (await callOk(agent.client, "balance")).total_sats as number;
      const top = await callOk(agent.client, "topup", { amount_sats: 100 });
      await callOk(agent.client, "topup_status", { quote: top.quote, wait: true, timeout_seconds: 30 });
      expect((await callOk(agent.client, "balance")).total_sats).toBe(before + 100);
      const paid = await callOk(agent.client, "withdraw", { destination: externalInvoice(50) });
      expect(paid).toMatchObject({ paid_sats: 50, state: "paid" });
      expect((await callOk(agent.client, "balance")).total_sats).toBe(before + 100 - 50 - paid.fee_sats);
    } finally {
      await agent.close();
    }
  });
});
