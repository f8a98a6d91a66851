/**
 * Pay-per-request with X-Cashu, end to end: `owlrun-mcp gateway` (bundled mint at /mint) as a child
 * process, a provider speaking the Owlrun protocol, the official `openai` client and a real cashu-ts
 * wallet. Every sat is accounted for at the end.
 */
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let dir: string;
let gw: CliProcess;
let mintUrl: string;
let wallet: Wallet;
let purse: Proof[] = [];
let agent: Agent;

/** A token of exactly `amount` sats from the test wallet's purse. */
async function token(amount: number, format: "A" | "B" = "B"): Promise<string> {
  const { send, keep } = await wallet.send(amount, purse);
  purse = keep;
  if (format === "B") return getEncodedToken({ mint: mintUrl, proofs: send });
  const v3 = {
    token: [{ mint: mintUrl, proofs: send.map((p) => ({ ...p, amount: Number(p.amount.toString()) })) }],
    unit: "sat",
  };
  return `cashuA${Buffer.from(JSON.stringify(v3)).toString("base64url")}`;
}

async function receive(t: string): Promise<number> {
  const got = await wallet.receive(t);
  purse.push(...got);
  return sumAmounts(got);
}

beforeAll(async () => {
  dir = tempDir();
  gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 2000);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] });
});
afterAll(async () => {
  await agent?.close();
  expect(await gw.stop()).toBe(0);
});

describe("X-Cashu pay-per-request", () => {
  it("advertises the bundled mint, the fee split and the model with both pricing shapes", async () => {
    const info = (await (await fetch(`${gw.url}/v1/info`)).json()) as any;
    expect(info.mints[0]).toBe(mintUrl);
    expect(info.fee_split.provider_pct).toBe(95);
    const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as any;
    const m = models.data.find((x: { id: string }) => x.id === MODEL);
    expect(m.pricing).toEqual({ per_m_input_usd: expect.any(Number), per_m_output_usd: expect.any(Number) });
    expect(m.routecat_pricing.input_per_1m_tokens_sats).toBeGreaterThan(0);
  });

  it("non-streaming chat with the openai client: answer, usage.cost and change in X-Cashu-Change", async () => {
    const paid = 50;
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(paid) },
    });
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "What is the answer?" }], max_tokens: 20 })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe("The answer is 42.");
    expect(data.usage!.completion_tokens).toBe(5);
    const cost = (data.usage as any).cost;
    expect(cost.sats).toBe(2); // tiny job: the 2-sat floor
    const change = response.headers.get("x-cashu-change")!;
    expect(change.startsWith("cashuB")).toBe(true);
    expect(await receive(change)).toBe(paid - cost.sats);
    expect(response.headers.get("x-cost-sats")).toBe("2");
  });

  it("streaming chat over raw fetch: OpenAI chunks, usage, then the cashu_change event before [DONE]; cashuA in → cashuA out", async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": await token(30, "A") },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const parsed = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = parsed
      .map((c) => c.choices?.map((x: any) => x.delta?.content ?? "").join("") ?? "")
      .join("");
    expect(text).toBe("The answer is 42.");
    const usage = parsed.find((c) => c.usage)!.usage;
    const change = parsed.at(-1);
    expect(change.type).toBe("cashu_change");
    expect(change.token.startsWith("cashuA")).toBe(true);
    expect(change.change_sats).toBe(30 - usage.cost.sats);
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("streaming with the openai client works unmodified", async () => {
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": await token(20) },
    });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toBe("The answer is 42.");
  });

  it("Owlrun stream format on request", async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions?format=owlrun`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": await token(10) },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    const objs = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(objs[0]).toEqual({ model: MODEL, message: { role: "assistant", content: "The" }, done: false });
    expect(objs.find((o) => o.done === true)).toBeDefined();
    const change = objs.find((o) => o.type === "cashu_change");
    expect(await receive(change.token)).toBe(change.change_sats);
  });

  it("refunds the whole token in X-Cashu-Change when the provider rejects, and when no provider serves the model", async () => {
    const rejecting = await startAgent(gw.url, { models: ["owlrun-test-busy:tiny"], rejectWith: "no_vram" });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-cashu": await token(25) },
        body: JSON.stringify({ model: "owlrun-test-busy:tiny", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).error.type).toBe("no_providers");
      expect(await receive(res.headers.get("x-cashu-change")!)).toBe(25);
      expect(rejecting.offered).toHaveLength(1);
    } finally {
      await rejecting.close();
    }
    const t = await token(15);
    const none = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": t },
      body: JSON.stringify({ model: "nobody-serves:this", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(none.status).toBe(503);
    expect(await receive(none.headers.get("x-cashu-change")!)).toBe(15);
  });

  it("a provider dying mid-stream: the client is told in the stream, pays nothing and gets all of it back; the node earns nothing and the failure counts against it", async () => {
    const dying = await startAgent(gw.url, {
      models: ["owlrun-test-dying:tiny"],
      reply: ["one", " two", " three", " four"],
      dieAfterChunks: 2,
    });
    try {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-cashu": await token(30) },
        body: JSON.stringify({
          model: "owlrun-test-dying:tiny",
          messages: [{ role: "user", content: "hi" }],
          stream: true,
        }),
      });
      const events = (await res.text())
        .split("\n\n")
        .filter((e) => e.startsWith("data: "))
        .map((e) => e.slice(6));
      expect(events.at(-1)).toBe("[DONE]");
      const objs = events.slice(0, -1).map((e) => JSON.parse(e));
      const text = objs
        .map((c) => c.choices?.map((x: any) => x.delta?.content ?? "").join("") ?? "")
        .join("");
      expect(text).toBe("one two");
      expect(objs.find((o) => o.error)?.error.type).toBe("provider_failed");
      const usage = objs.find((o) => o.usage)!.usage;
      expect(usage.completion_tokens).toBe(2);
      expect(usage.cost.sats).toBe(0);
      const change = objs.find((o) => o.type === "cashu_change");
      expect(change.change_sats).toBe(30);
      expect(await receive(change.token)).toBe(30);
      const earnings = (await (
        await fetch(`${gw.url}/v1/provider/earnings`, {
          headers: { authorization: `Bearer ${dying.apiKey}` },
        })
      ).json()) as any;
      expect(earnings).toMatchObject({ earned_total_sats: 0, balance_sats: 0, failed_jobs: 1 });
    } finally {
      await dying.close();
    }
  });

  it("bad tokens and bodies get the documented 4xx and move no money", async () => {
    const post = (headers: Record<string, string>, body: unknown) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    const ok = { model: MODEL, messages: [{ role: "user", content: "hi" }] };
    const cases: [Record<string, string>, unknown, number, string][] = [
      [{ "x-cashu": "cashuBnotatoken" }, ok, 400, "invalid_token"],
      [{ "x-cashu": "hello" }, ok, 400, "invalid_token"],
      [{}, ok, 402, "payment_required"],
      [{ "x-cashu": await token(1) }, ok, 400, "insufficient_payment"], // NUT-24
      [{ "x-cashu": "cashuBxx" }, "{not json", 400, "invalid_request"],
      [{ "x-cashu": "cashuBxx" }, { model: MODEL }, 400, "invalid_request"],
      [{ "x-cashu": "cashuBxx" }, { ...ok, max_tokens: -3 }, 400, "invalid_request"],
    ];
    for (const [headers, body, status, type] of cases) {
      const res = await post(headers, body);
      expect([res.status, ((await res.json()) as any).error.type]).toEqual([status, type]);
    }
    // A token from a mint the gateway does not trust.
    const other = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
    try {
      const w2 = await newWallet(other.url);
      const foreign = getEncodedToken({ mint: other.url, proofs: await mintProofs(w2, 10) });
      const res = await post({ "x-cashu": foreign }, ok);
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error.type).toBe("foreign_mint");
      // ...and it was not spent.
      expect(sumAmounts(await w2.receive(foreign))).toBe(10);
    } finally {
      await other.stop();
    }
    const big = await post(
      { "x-cashu": "cashuBxx" },
      { model: MODEL, messages: [{ role: "user", content: "x".repeat(2_000_000) }] },
    );
    expect(big.status).toBe(413);
  });

  it("the same token sent in many concurrent requests is accepted once", async () => {
    const t = await token(40);
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-cashu": t },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
        }),
      ),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(402);
      expect(((await r.json()) as any).error.type).toBe("token_spent");
    }
    const winner = results.find((r) => r.status === 200)!;
    await receive(winner.headers.get("x-cashu-change")!);
  });

  it("one client-chosen request id sent with five tokens at once: one is served, the others get 409 and keep their tokens", async () => {
    const id = randomUUID();
    const tokens: string[] = [];
    for (const a of [21, 22, 23, 24, 25]) tokens.push(await token(a));
    const results = await Promise.all(
      tokens.map((t) =>
        fetch(`${gw.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-cashu": t, "x-owlrun-request-id": id },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
        }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(4);
    for (const [i, r] of results.entries()) {
      const body = (await r.json()) as any;
      if (r.status === 200) {
        expect(body.payment.request_id).toBe(id);
        await receive(r.headers.get("x-cashu-change")!);
      } else {
        expect(body.error.type).toBe("conflict");
        // Never claimed: the client's own token is still good.
        expect(await receive(tokens[i]!)).toBe([21, 22, 23, 24, 25][i]);
      }
    }
    // The id stays taken after the request ended.
    const again = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": await token(20), "x-owlrun-request-id": id },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(again.status).toBe(409);
  });

  it("a 300,000-character CJK prompt is never charged above what POST /v1/price quoted, however much the node reports", async () => {
    const rogue = await startAgent(gw.url, {
      models: ["owlrun-test-cjk:tiny"],
      job: { words: ["字", "字"], usage: () => ({ prompt_tokens: 10_000_000, completion_tokens: 2 }) },
    });
    try {
      const body = {
        model: "owlrun-test-cjk:tiny",
        messages: [{ role: "user", content: "字".repeat(300_000) }],
        max_tokens: 16,
      };
      const quote = (await (
        await fetch(`${gw.url}/v1/price`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        })
      ).json()) as any;
      const paid = quote.sats + 20;
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-cashu": await token(paid) },
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(200);
      const answer = (await res.json()) as any;
      expect(answer.usage.cost.sats).toBeGreaterThan(2);
      expect(answer.usage.cost.sats).toBeLessThanOrEqual(quote.sats);
      expect(await receive(res.headers.get("x-cashu-change")!)).toBe(paid - answer.usage.cost.sats);
      // 900,000 bytes of UTF-8: the quote counts the prompt as its bound, bytes / 2 plus the template.
      expect(quote.prompt_tokens_estimate).toBeGreaterThanOrEqual(450_000);
    } finally {
      await rogue.close();
    }
  });

  it("the books balance: claims on the gateway equal the ecash it holds, all unspent at the mint", async () => {
    await agent.close();
    await gw.stop();
    const ledger = Ledger.open(`${dir}/gateway`);
    const gwWallet = await GatewayWallet.open(`${dir}/gateway`, [mintUrl], silentLogger);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await gwWallet.balance(mintUrl)) * 1000);
    const fees = audit.balances.get("equity:fees") ?? 0;
    let providers = 0;
    for (const [account, msat] of audit.balances) if (account.startsWith("provider:")) providers += msat;
    expect(fees + providers).toBe(audit.ecashMsat); // only charges stay; every change went back out
    // Floor jobs split 1 sat to the provider and 1 to the gateway (Owlrun seed); the CJK job above
    // the floor pays the provider its ≥ 90 % share, so the providers hold at least the fees.
    expect(providers).toBeGreaterThanOrEqual(fees);
    expect(providers).toBeGreaterThan(0);
    await ledger.close();
    await gwWallet.close();
    gw = await startCli(["gateway", "--port", "0", "--data-dir", dir]);
  });
});
