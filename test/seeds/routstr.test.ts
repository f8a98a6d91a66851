/**
 * The Routstr seed (shared/seeds/routstr-using-the-api.txt), its examples as written: the openai
 * SDK with a session key or a raw cashuA token as the API key (streaming and not), the curl line,
 * the 402 insufficient-balance body, the Lightning top-up of a key, and the balance coming back
 * in the format the session was funded with.
 */
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER } from "../../provider/index.js";
import { MODEL, type SeedNet, startSeedNet } from "./harness.js";

let net: SeedNet;
beforeAll(async () => {
  net = await startSeedNet();
}, 120_000);
afterAll(async () => {
  await net?.close();
});

const post = (path: string, body: unknown, key?: string) =>
  fetch(`${net.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });

/** An sk- session key funded by a cashu token (Routstr's "Cashu import"). */
async function sessionKey(sats: number, format: "A" | "B" = "B"): Promise<string> {
  const res = await post("/v1/balance/create", { token: await net.token(sats, format) });
  expect(res.status).toBe(201);
  return ((await res.json()) as { api_key: string }).api_key;
}

const balanceOf = async (key: string) =>
  (
    (await (
      await fetch(`${net.url}/v1/balance`, { headers: { Authorization: `Bearer ${key}` } })
    ).json()) as any
  ).balance_sats as number;

describe("Routstr seed: using the API", () => {
  it("Python SDK: OpenAI(base_url=…/v1, api_key=sk-…), stream=True, chunk.choices[0].delta.content", async () => {
    const client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: await sessionKey(50) });
    const response = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hello!" }],
      stream: true,
    });
    let printed = "";
    for await (const chunk of response)
      if (chunk.choices[0]?.delta.content) printed += chunk.choices[0].delta.content;
    expect(printed).toBe(SCRIPTED_ANSWER);
  });

  it("Node.js: apiKey is a raw cashuA token; completion.choices[0]", async () => {
    const token = await net.token(30, "A");
    const openai = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: token });
    const completion = await openai.chat.completions.create({
      messages: [{ role: "user", content: "Say this is a test" }],
      model: MODEL,
    });
    expect(completion.choices[0]).toMatchObject({ message: { role: "assistant", content: SCRIPTED_ANSWER } });
    // The token became a session: the same key spends what is left.
    const again = await openai.chat.completions.create({
      messages: [{ role: "user", content: "x" }],
      model: MODEL,
    });
    expect(again.choices[0]!.message.content).toBe(SCRIPTED_ANSWER);
    expect(await balanceOf(token)).toBe(30 - 2 - 2);
  });

  it("cURL with Authorization: Bearer cashuA…", async () => {
    const res = await post(
      "/v1/chat/completions",
      { model: MODEL, messages: [{ role: "user", content: "Hello!" }] },
      await net.token(10, "A"),
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).choices[0].message.content).toBe(SCRIPTED_ANSWER);
  });

  it("402 insufficient balance: {error: {message: 'Insufficient balance. Current: … msat, Required: … msat', type, code}}", async () => {
    const key = await sessionKey(3);
    // 1M output tokens at $0.06/1M and $100k/BTC: 60 sats, more than the 3 the session holds.
    const res = await post(
      "/v1/chat/completions",
      { model: MODEL, messages: [{ role: "user", content: "Hello!" }], max_tokens: 1_000_000 },
      key,
    );
    expect(res.status).toBe(402);
    const { error } = (await res.json()) as any;
    expect(error.type).toBe("insufficient_balance");
    expect(error.code).toBe(402);
    expect(error.message).toMatch(/^Insufficient balance\. Current: 3000 msat, Required: \d+ msat$/);
  });

  it("top up the key with /lightning/invoice (topup purpose); the status says paid once credited", async () => {
    const key = await sessionKey(5);
    for (const base of ["", "/v1"]) {
      const res = await post(`${base}/lightning/invoice`, {
        amount_sats: 100,
        purpose: "topup",
        api_key: key,
      });
      expect(res.status).toBe(200);
      const inv = (await res.json()) as any;
      expect(inv).toMatchObject({ amount_sats: 100, bolt11: expect.stringMatching(/^lnbc/) });
      expect(inv.payment_hash).toMatch(/^[0-9a-f]{64}$/);
      let status: any;
      for (let i = 0; i < 100; i++) {
        status = await (await fetch(`${net.url}${base}/lightning/invoice/${inv.invoice_id}/status`)).json();
        if (status.status === "paid") break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toMatchObject({ status: "paid", amount_sats: 100 });
    }
    expect(await balanceOf(key)).toBe(205);
    // and once more: paid stays paid, credited once
    expect(await balanceOf(key)).toBe(205);
  });

  it("/lightning/invoice refuses an unknown key; an unknown invoice is 404", async () => {
    expect(
      (await post("/lightning/invoice", { amount_sats: 10, purpose: "topup", api_key: "sk-nope" })).status,
    ).toBe(401);
    expect((await fetch(`${net.url}/lightning/invoice/nope/status`)).status).toBe(404);
  });

  it('purpose "create": a new sk- key from a Lightning payment, shown once by the status call', async () => {
    const res = await post("/v1/lightning/invoice", { amount_sats: 60, purpose: "create" });
    expect(res.status).toBe(200);
    const inv = (await res.json()) as any;
    expect(inv).toMatchObject({ amount_sats: 60, bolt11: expect.stringMatching(/^lnbc/) });
    // The id is a secret of its own: not the payment hash anyone holding the bolt11 can compute.
    expect(inv.invoice_id).not.toBe(inv.payment_hash);
    expect((await fetch(`${net.url}/v1/lightning/invoice/${inv.payment_hash}/status`)).status).toBe(404);
    const statusOf = async () =>
      (await (await fetch(`${net.url}/v1/lightning/invoice/${inv.invoice_id}/status`)).json()) as any;
    let status: any;
    for (let i = 0; i < 100; i++) {
      status = await statusOf();
      if (status.status === "paid") break;
      expect(status.api_key).toBeNull();
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toMatchObject({ status: "paid", amount_sats: 60, api_key: expect.stringMatching(/^sk-/) });
    const key = status.api_key as string;
    // Shown once: the next status call says paid with no key, and the money is on the key once.
    expect(await statusOf()).toMatchObject({ status: "paid", api_key: null });
    expect(await balanceOf(key)).toBe(60);
    const client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: key });
    const done = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(done.choices[0]?.message.content).toBe(SCRIPTED_ANSWER);
  });

  it('purpose "create": racing status calls after payment make one key with the money once', async () => {
    const inv = (await (
      await post("/lightning/invoice", { amount_sats: 25, purpose: "create" })
    ).json()) as any;
    let keys: string[] = [];
    for (let i = 0; i < 100 && keys.length === 0; i++) {
      const all = await Promise.all(
        Array.from(
          { length: 8 },
          async () =>
            (await (await fetch(`${net.url}/lightning/invoice/${inv.invoice_id}/status`)).json()) as any,
        ),
      );
      keys = all.map((s) => s.api_key).filter((k): k is string => typeof k === "string");
      if (all.some((s) => s.status === "paid")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(keys).toHaveLength(1);
    expect(await balanceOf(keys[0]!)).toBe(25);
  });

  it("a withdrawal answers in the format the session was funded with: cashuA in → cashuA out", async () => {
    for (const format of ["A", "B"] as const) {
      const key = await sessionKey(12, format);
      const res = await post("/v1/balance/withdraw", {}, key);
      expect(res.status).toBe(200);
      const out = (await res.json()) as any;
      expect(out.token.startsWith(`cashu${format}`)).toBe(true);
      expect(await net.receive(out.token)).toBe(12);
    }
    // A raw cashuA token used as the key is a session funded with cashuA too.
    const raw = await net.token(9, "A");
    const res = await post("/v1/balance/withdraw", {}, raw);
    const out = (await res.json()) as any;
    expect(out.token.startsWith("cashuA")).toBe(true);
    expect(await net.receive(out.token)).toBe(9);
  });

  it("Claude Code: ANTHROPIC_BASE_URL=…/v1 and ANTHROPIC_AUTH_TOKEN=sk-… (the Anthropic SDK as Claude Code sets it)", async () => {
    const key = await sessionKey(60);
    // Claude Code builds its client from these two variables: base URL as given, the token as Bearer.
    const client = new Anthropic({ baseURL: `${net.url}/v1`, authToken: key, apiKey: null });
    const message = await client.messages.create({
      model: MODEL,
      max_tokens: 64,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(message.content[0]).toMatchObject({ type: "text", text: SCRIPTED_ANSWER });
    const counted = await client.messages.countTokens({
      model: MODEL,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(counted.input_tokens).toBeGreaterThan(0);
    expect(await balanceOf(key)).toBeLessThan(60);
  });
});
