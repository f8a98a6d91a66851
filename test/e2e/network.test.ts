/**
 * The real network as separate processes: `owlrun-mcp gateway` (bundled mint) and
 * `owlrun-mcp provider --embedded` (node-llama-cpp on the generated scripted model), driven by the
 * official `openai` client paying with a cashu-ts wallet.
 */
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER, SCRIPTED_MODEL_ID } from "../../provider/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let gw: CliProcess;
let provider: CliProcess;
let wallet: Wallet;
let purse: Proof[];
let mintUrl: string;

async function token(amount: number): Promise<string> {
  const { send, keep } = await wallet.send(amount, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

async function waitForModel(model: string) {
  for (let i = 0; i < 100; i++) {
    const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
    if (models.data.some((m) => m.id === model)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${model} never appeared`);
}

beforeAll(async () => {
  const dir = tempDir();
  gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  provider = await startCli(
    ["provider", "--gateway", gw.url, "--embedded", "--data-dir", tempDir()],
    { OWLRUN_LOG_LEVEL: "info" },
    60_000,
    /provider connected/,
  );
  await waitForModel(SCRIPTED_MODEL_ID);
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 500);
}, 90_000);
afterAll(async () => {
  await provider?.stop();
  await gw?.stop();
});

describe("gateway + embedded provider", () => {
  it("answers with the scripted model, streaming and not, chat and completions, with change", async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(20) },
    });
    const { data, response } = await client.chat.completions
      .create({
        model: SCRIPTED_MODEL_ID,
        messages: [{ role: "user", content: "Who are you?" }],
        max_tokens: 32,
      })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(SCRIPTED_ANSWER);
    expect(data.usage!.completion_tokens).toBe(6);
    expect(data.usage!.prompt_tokens).toBeLessThan(60);
    expect(data.usage!.prompt_tokens).toBeGreaterThan(0);
    const change = await wallet.receive(response.headers.get("x-cashu-change")!);
    expect(sumAmounts(change)).toBe(20 - (data.usage as any).cost.sats);
    purse.push(...change);

    const streaming = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(20) },
    });
    const stream = await streaming.chat.completions.create({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "again" }],
      stream: true,
    });
    let text = "";
    let changeToken = "";
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if ((chunk as any).type === "cashu_change") changeToken = (chunk as any).token;
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    purse.push(...(await wallet.receive(changeToken)));

    const completion = await new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(20) },
    }).completions.create({ model: SCRIPTED_MODEL_ID, prompt: "Once upon a time", max_tokens: 16 });
    expect(completion.choices[0]!.text.trim()).toBe(SCRIPTED_ANSWER);
  });

  it("max_tokens is honoured by the provider and billed accordingly", async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(10) },
    });
    const r = await client.chat.completions.create({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "x" }],
      max_tokens: 3,
    });
    expect(r.choices[0]!.message.content).toBe("Hello from the");
    expect(r.usage!.completion_tokens).toBe(3);
  });

  it("the provider prints a status line per job, and a summary when it shuts down", async () => {
    expect(provider.stderr()).toMatch(/job [0-9a-f-]{8} owlrun-test-scripted:tiny 6 tokens in \d+ ms/);
    expect(await provider.stop()).toBe(0);
    expect(provider.stderr()).toMatch(/served 4 jobs, 21 tokens, rejected 0/);
  });
});
