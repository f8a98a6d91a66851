/**
 * Two gateways (two processes' worth: each its own data dir and connection pool) on one PostgreSQL
 * share the ecash pool through the real mint and the real cashu-ts wallet: change paid by one is
 * claimable at the other, concurrent swaps in both never blind the same NUT-13 secret (the mint
 * would refuse outputs it already signed), and both see one balance.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { sumAmounts } from "../support/cashu.js";
import { type GatewayPair, startGatewayPair } from "../support/gateway-pair.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson } from "../support/payments.js";
import { fundedPurse, type Purse } from "../support/purse.js";

const MODEL = "owlrun-test-scripted:tiny";
let pair: GatewayPair;
let agent: Agent;
let purse: Purse;

beforeAll(async () => {
  pair = await startGatewayPair({ prefix: "gateways" });
  purse = await fundedPurse(pair.mintUrl, 1000);
  agent = await startAgent(pair.a.url, { models: [MODEL], reply: ["ok"] });
});
afterAll(async () => {
  await agent?.close();
  await pair?.close();
});

describe("two gateways on one PostgreSQL pool", () => {
  it("change paid by one gateway is claimable at the other", async () => {
    const { a, b, mintUrl } = pair;
    const id = randomUUID();
    const res = await postJson(
      `${a.url}/v1/chat/completions`,
      { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 },
      { "x-cashu": await purse.token(40), "x-owlrun-request-id": id },
    );
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const change = res.headers.get("x-cashu-change")!;
    expect(change).toBeTruthy();
    const atB = await fetch(`${b.url}/v1/cashu/change/${id}`);
    expect(atB.status).toBe(200);
    const body = (await atB.json()) as { token: string; change_sats: number };
    expect(body.token).toBe(change);
    expect(body.change_sats).toBe(inspectToken(change).amountSat);
    expect(await b.gateway.wallet.balance(mintUrl)).toBe(await a.gateway.wallet.balance(mintUrl));
    await purse.receive(change);
  });

  it("concurrent swaps in both gateways use distinct counters and pay from one pool", async () => {
    const { a, b, mintUrl } = pair;
    const tokens: string[] = [];
    for (let i = 0; i < 16; i++) tokens.push(await purse.token(3 + (i % 5))); // one purse: one at a time
    const before = await a.gateway.wallet.balance(mintUrl);
    // Receiving is a swap with deterministic outputs: a repeated counter would be refused by the mint.
    const got = await Promise.all(
      tokens.map((t, i) => (i % 2 ? b : a).gateway.wallet.claim(inspectToken(t))),
    );
    const received = got.reduce((s, g) => s + g.amountSat, 0);
    expect(received).toBe(tokens.reduce((s, t) => s + inspectToken(t).amountSat, 0));
    expect(await b.gateway.wallet.balance(mintUrl)).toBe(before + received);
    // Paying out from both at once: every token is good at the mint, the pool drops by their sum.
    const paid = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 ? b : a).gateway.wallet.pay(mintUrl, 2 + (i % 3))),
    );
    const paidSat = paid.reduce((s, t) => s + inspectToken(t).amountSat, 0);
    expect(await a.gateway.wallet.balance(mintUrl)).toBe(before + received - paidSat);
    const redeemed = await Promise.all(paid.map((t) => purse.wallet.receive(t)));
    expect(redeemed.reduce((s, ps) => s + sumAmounts(ps), 0)).toBe(paidSat);
  });
});
