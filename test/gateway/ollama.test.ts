/**
 * The gateway's Ollama routes with the official `ollama` client (host = the gateway): NDJSON
 * streaming and single answers, paid with X-Cashu (change in the final object and the header) or an
 * rc_ key; refused and load-only requests cost nothing. Gateway as a child process, scripted node.
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { fundedPurse, type Purse } from "../support/purse.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: CliProcess;
let mintUrl: string;
let purse: Purse;
let agent: Agent;

const token = (amount: number) => purse.token(amount);
const receive = (t: string) => purse.receive(t);

beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  purse = await fundedPurse(mintUrl, 500);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] });
  for (let i = 0; i < 100; i++) {
    const tags = (await (await fetch(`${gw.url}/api/tags`)).json()) as { models: { name: string }[] };
    if (tags.models.some((m) => m.name === MODEL)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});
afterAll(async () => {
  await agent?.close();
  expect(await gw.stop()).toBe(0);
});

describe("Ollama routes on the gateway", () => {
  it("lists served models in /api/tags and answers /api/version", async () => {
    const ollama = new Ollama({ host: gw.url });
    expect((await ollama.list()).models.map((m) => m.name)).toEqual([MODEL]);
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("streams a chat paid with X-Cashu; the done object carries the eval counts, cost and change", async () => {
    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": await token(40) } });
    const stream = await ollama.chat({
      model: MODEL,
      messages: [{ role: "user", content: "What is the answer?" }],
      stream: true,
      options: { num_predict: 20 },
    });
    let text = "";
    let last: Record<string, unknown> = {};
    for await (const part of stream) {
      text += part.message.content;
      last = part as unknown as Record<string, unknown>;
    }
    expect(text).toBe("The answer is 42.");
    expect(last).toMatchObject({ done: true, done_reason: "stop", eval_count: 5 });
    expect(last.prompt_eval_count).toBeGreaterThan(0);
    const cost = last.cost as { sats: number; change_sats: number };
    expect(cost.sats).toBe(2);
    expect(await receive(last.cashu_change as string)).toBe(40 - cost.sats);
  });

  it("generate without streaming: change in X-Cashu-Change as well as in the body", async () => {
    const paid = await token(30);
    const r = await fetch(`${gw.url}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": paid },
      body: JSON.stringify({ model: MODEL, prompt: "Once", stream: false, options: { num_predict: 3 } }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      response: string;
      eval_count: number;
      cashu_change: string;
      cost: any;
    };
    expect(body.response).toBe("The answer is");
    expect(body.eval_count).toBe(3);
    expect(r.headers.get("x-cashu-change")).toBe(body.cashu_change);
    expect(await receive(body.cashu_change)).toBe(30 - body.cost.sats);
  });

  it("an rc_ key pays through the same pipeline (balance goes down by the cost)", async () => {
    const reg = await fetch(`${gw.url}/v1/auth/register`, { method: "POST" });
    const { api_key } = (await reg.json()) as { api_key: string };
    const auth = { authorization: `Bearer ${api_key}`, "content-type": "application/json" };
    await fetch(`${gw.url}/v1/balance/topup`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ token: await token(20) }),
    });
    const balance = async () =>
      ((await (await fetch(`${gw.url}/v1/balance`, { headers: auth })).json()) as { balance_sats: number })
        .balance_sats;
    const before = await balance();
    const ollama = new Ollama({ host: gw.url, headers: { Authorization: `Bearer ${api_key}` } });
    const answer = await ollama.generate({ model: MODEL, prompt: "hi", stream: false });
    expect(answer.response).toBe("The answer is 42.");
    const cost = (answer as unknown as { cost: { sats: number } }).cost.sats;
    expect(cost).toBeGreaterThan(0);
    expect(await balance()).toBe(before - cost);
  });

  it("refuses bad or unpaid requests in a shape the ollama client reads, charging nothing", async () => {
    const paid = await token(10);
    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": paid } });
    await expect(
      ollama.chat({ model: MODEL, messages: [{ role: "wizard" as "user", content: "x" }] }),
    ).rejects.toMatchObject({ status_code: 400, error: expect.stringMatching(/invalid request: messages/) });
    // The token was not touched: it still pays for a request.
    expect(await receive(paid)).toBe(10);

    const unpaid = new Ollama({ host: gw.url });
    await expect(unpaid.generate({ model: MODEL, prompt: "hi" })).rejects.toMatchObject({
      status_code: 402,
      error: expect.stringMatching(/X-Cashu/),
    });
    const r = await fetch(`${gw.url}/api/chat`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "x" }], options: "fast" }),
    });
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ type: "invalid_request", code: 400 });
  });

  it("a request that only loads the model answers done_reason load, free", async () => {
    const ollama = new Ollama({ host: gw.url });
    const r = await ollama.generate({ model: MODEL, prompt: "", stream: false });
    expect(r).toMatchObject({ done: true, done_reason: "load", response: "" });
  });
});
