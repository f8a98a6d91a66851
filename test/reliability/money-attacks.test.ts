/**
 * Issue 15's money attacks (items 1–4) replayed against one gateway (child process, bundled mint)
 * and scripted Owlrun providers on loopback, with a real cashu-ts wallet paying X-Cashu: a rogue
 * node colluding with free `rc_` keys, one request id sent with five tokens at once, a provider
 * failing mid-stream, and a 300,000-character CJK prompt. Then every sat is accounted for: the ledger
 * balances with nothing open, no promo was spent, its ecash is exactly the gateway wallet's proofs
 * (all UNSPENT at the mint), and what the client spent is what the gateway charged.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { expectBooksClosed, Purse, settledGatewayBooks, sumAccounts } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson } from "../support/payments.js";
import { waitFor } from "../mcp/harness.js";

const MODEL = "attack-paid:tiny";
const FREE = "attack-free:tiny";
const DYING = "attack-dying:tiny";
const CJK = "attack-cjk:tiny";
const FREE_MAX_TOKENS = 8;
const FREE_BUDGET_SATS = 12;
const SIGNUPS_PER_HOUR = 3;

let dir: string;
let gw: CliProcess;
let mintUrl: string;
let honest: Agent;
let client: Purse;
/** sats the gateway charged the client (paid − change) */
let charged = 0;

beforeAll(async () => {
  dir = tempDir("owlrun-money-attacks-");
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--fake-delay-ms",
    "20",
    "--free-max-tokens",
    String(FREE_MAX_TOKENS),
    "--free-daily-budget-sats",
    String(FREE_BUDGET_SATS),
    "--account-signups-per-hour",
    String(SIGNUPS_PER_HOUR),
  ]);
  mintUrl = `${gw.url}/mint`;
  honest = await startAgent(gw.url, { models: [MODEL], reply: ["fine", "."] });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
    return m.data.some((x) => x.id === MODEL) || undefined;
  });
  client = await Purse.open(mintUrl);
  await client.fund(1000);
}, 90_000);

afterAll(async () => {
  await honest?.close();
  expect(await gw?.stop()).toBe(0);
});

const earnings = async (agent: Agent) =>
  (await (
    await fetch(`${gw.url}/v1/provider/earnings`, { headers: { authorization: `Bearer ${agent.apiKey}` } })
  ).json()) as { earned_total_sats: number; balance_sats: number; failed_jobs?: number };

/** An X-Cashu chat paying `paid` sats; the change is redeemed at once, as a client does. */
async function paidChat(body: unknown, paid: number, headers: Record<string, string> = {}) {
  const res = await postJson(`${gw.url}/v1/chat/completions`, body, {
    "x-cashu": await client.token(paid),
    ...headers,
  });
  const change = res.headers.get("x-cashu-change");
  const back = change ? await client.receive(change) : 0;
  charged += paid - back;
  return { res, back };
}

describe("money attacks replayed against a running network", () => {
  it("a rogue node colluding with free keys earns no sats; free requests are capped, signups limited, the promo budget ends them", async () => {
    const keys: string[] = [];
    for (let i = 0; i < SIGNUPS_PER_HOUR; i++) {
      const res = await postJson(`${gw.url}/v1/auth/register`, {});
      expect(res.status).toBe(201);
      keys.push(((await res.json()) as { api_key: string }).api_key);
    }
    const more = await postJson(`${gw.url}/v1/auth/register`, {});
    expect(more.status).toBe(429);
    await more.arrayBuffer();

    const rogue = await startAgent(gw.url, {
      models: [FREE],
      freeTierPct: 100,
      job: {
        words: Array.from({ length: 40 }, () => "字字字字字字字字"),
        usage: () => ({ prompt_tokens: 1_000_000, completion_tokens: 1_000_000 }),
      },
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 12; i++) {
        const res = await postJson(
          `${gw.url}/v1/chat/completions`,
          { model: FREE, messages: [{ role: "user", content: "hi" }], max_tokens: 1_000_000 },
          { authorization: `Bearer ${keys[i % keys.length]}` },
        );
        statuses.push(res.status);
        const body = (await res.json()) as any;
        if (res.status === 200) {
          expect(body.usage.completion_tokens).toBeLessThanOrEqual(FREE_MAX_TOKENS);
          expect(body.usage.cost.sats).toBe(0);
        } else {
          expect(res.status).toBe(402);
          expect(body.error.type).toBe("quota_exceeded");
        }
      }
      const served = statuses.filter((s) => s === 200).length;
      // The budget pays at least the 2-sat floor per job: at most budget / 2 jobs, then none.
      expect(served).toBeGreaterThan(0);
      expect(served).toBeLessThanOrEqual(FREE_BUDGET_SATS / 2);
      expect(statuses.slice(served).every((s) => s === 402)).toBe(true);
      expect(rogue.offers.every((o) => o.free_tier === true)).toBe(true);
      expect(rogue.bodies).toHaveLength(served);
      expect(rogue.bodies.every((b) => b.max_tokens === FREE_MAX_TOKENS)).toBe(true);
      await waitFor(async () => rogue.completes.length === served || undefined);
      expect(rogue.completes.every((c) => c.earned_usd === 0)).toBe(true);
      expect(await earnings(rogue)).toMatchObject({ earned_total_sats: 0, balance_sats: 0 });
    } finally {
      await rogue.close();
    }
  });

  it("one request id sent with five tokens at once: one is served, the others get 409 and keep their tokens", async () => {
    const id = randomUUID();
    const amounts = [21, 22, 23, 24, 25];
    const tokens = await Promise.all(amounts.map((a) => client.token(a)));
    const body = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 };
    const results = await Promise.all(
      tokens.map((t) =>
        postJson(`${gw.url}/v1/chat/completions`, body, { "x-cashu": t, "x-owlrun-request-id": id }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409, 409, 409]);
    for (const [i, r] of results.entries()) {
      const answer = (await r.json()) as any;
      if (r.status === 200) {
        const back = await client.receive(r.headers.get("x-cashu-change")!);
        charged += amounts[i]! - back;
      } else {
        expect(answer.error.type).toBe("conflict");
        // Never claimed: the client's own token is still good at the mint.
        expect(await client.receive(tokens[i]!)).toBe(amounts[i]);
      }
    }
  });

  it("a provider failing mid-stream: the buyer's whole token comes back, the node earns nothing", async () => {
    const dying = await startAgent(gw.url, {
      models: [DYING],
      reply: ["one", " two", " three"],
      dieAfterChunks: 2,
    });
    try {
      const paid = 30;
      const res = await postJson(
        `${gw.url}/v1/chat/completions`,
        { model: DYING, messages: [{ role: "user", content: "hi" }], stream: true },
        { "x-cashu": await client.token(paid) },
      );
      const objs = (await res.text())
        .split("\n\n")
        .filter((e) => e.startsWith("data: ") && e !== "data: [DONE]")
        .map((e) => JSON.parse(e.slice(6)));
      expect(objs.find((o) => o.error)?.error.type).toBe("provider_failed");
      const change = objs.find((o) => o.type === "cashu_change");
      expect(change.change_sats).toBe(paid);
      expect(await client.receive(change.token)).toBe(paid);
      expect(await earnings(dying)).toMatchObject({ earned_total_sats: 0, balance_sats: 0, failed_jobs: 1 });
    } finally {
      await dying.close();
    }
  });

  it("a 300,000-character CJK prompt with an inflated usage report is charged no more than POST /v1/price quoted", async () => {
    const rogue = await startAgent(gw.url, {
      models: [CJK],
      job: { words: ["字", "字"], usage: () => ({ prompt_tokens: 10_000_000, completion_tokens: 2 }) },
    });
    try {
      const body = {
        model: CJK,
        messages: [{ role: "user", content: "字".repeat(300_000) }],
        max_tokens: 16,
      };
      const quote = (await (await postJson(`${gw.url}/v1/price`, body)).json()) as { sats: number };
      const paid = quote.sats + 20;
      const { res, back } = await paidChat(body, paid);
      expect(res.status).toBe(200);
      const answer = (await res.json()) as any;
      // Billed above the 2-sat floor (the prompt counts), yet never above the quote.
      expect(answer.usage.cost.sats).toBeGreaterThan(2);
      expect(answer.usage.cost.sats).toBeLessThanOrEqual(quote.sats);
      expect(paid - back).toBe(answer.usage.cost.sats);
    } finally {
      await rogue.close();
    }
  });

  it("ends with the books balanced and the ecash at the mint equal to them", async () => {
    const books = await settledGatewayBooks(join(dir, "gateway"), mintUrl);
    const why = JSON.stringify(Object.fromEntries(books.balances));
    expectBooksClosed(books, why);
    expect(books.balances.get("equity:promo") ?? 0, why).toBe(0);
    expect(await client.notUnspent()).toBe(0);
    // What the client spent at the gateway is what it was charged, and that went to providers and fees.
    expect(client.sent - client.received).toBe(charged);
    const earned = sumAccounts(books, "provider:") + (books.balances.get("equity:fees") ?? 0);
    expect(earned, why).toBe(charged * 1000);
    expect(sumAccounts(books, "user:"), why).toBe(0);
    // Every sat minted is in the client's purse or the gateway's ecash.
    expect(client.balance + books.ecashMsat / 1000).toBe(client.minted);
  });
});
