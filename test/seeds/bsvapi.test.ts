/**
 * The BSVAPI seed (shared/seeds/bsvapi-protocol.txt), its examples as written: the three-step
 * 402 protocol on /api/v1/chat/completions, /api/v1/models, /api/v1/price, and the business key.
 * The chain is the one double at the edge (a verifier that knows the transactions "broadcast").
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBusinessKey, ModelAliases, setBusinessCreditLimit } from "../../gateway/index.js";
import { Accounts } from "../../gateway/ledger/index.js";
import { SCRIPTED_ANSWER } from "../../provider/index.js";
import { MODEL, type SeedNet, startSeedNet } from "./harness.js";

const ADDRESS = "1BsvapiSeedTestAddressxxxxxxxxxxx";
const chain = new Map<string, number>();
let net: SeedNet;
beforeAll(async () => {
  net = await startSeedNet({
    bsv: {
      chainApiUrl: "http://127.0.0.1:1/unused",
      address: ADDRESS,
      verifier: { paidTo: async (txid, address) => (address === ADDRESS ? (chain.get(txid) ?? null) : 0) },
    },
    // The seed's business example names grok-3; here it is the devnet's model.
    modelAliases: ModelAliases.parse([`grok-3=${MODEL}`]),
  });
}, 120_000);
afterAll(async () => {
  await net?.close();
});

const BODY = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "Hello" }] });

describe("BSVAPI seed: the 402 protocol", () => {
  it("step 1 → 402 with x-bsv-payment-satoshis-required; step 2 pays; step 3: choices, usage, payment receipt", async () => {
    // POST /api/v1/chat/completions (no payment)
    const first = await fetch(`${net.url}/api/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: BODY,
    });
    expect(first.status).toBe(402);
    const required = Number(first.headers.get("x-bsv-payment-satoshis-required"));
    expect(required).toBeGreaterThan(0);
    await first.body?.cancel();

    // Create a BSV transaction for the required amount; x-bsv-payment: <txid>
    const txid = randomBytes(32).toString("hex");
    chain.set(txid, required);
    const paid = await fetch(`${net.url}/api/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "x-bsv-payment": txid },
      body: BODY,
    });
    expect(paid.status).toBe(200);
    const body = (await paid.json()) as any;
    expect(body.choices[0].message).toEqual({ role: "assistant", content: SCRIPTED_ANSWER });
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    expect(body.payment).toMatchObject({ txid, satoshisPaid: required });
  });

  it("curl https://bsvapi.com/api/v1/models: no authentication required", async () => {
    const res = await fetch(`${net.url}/api/v1/models`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).data.map((m: any) => m.id)).toContain(MODEL);
  });

  it("curl -X POST …/api/v1/price: a price in satoshis before calling, no authentication", async () => {
    const res = await fetch(`${net.url}/api/v1/price`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: BODY,
    });
    expect(res.status).toBe(200);
    const price = (await res.json()) as any;
    expect(price.sats).toBeGreaterThan(0);
    expect(price.bsv_satoshis).toBeGreaterThan(0);
    // the price quoted is what the 402 asks
    const challenge = await fetch(`${net.url}/api/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: BODY,
    });
    expect(Number(challenge.headers.get("x-bsv-payment-satoshis-required"))).toBe(price.bsv_satoshis);
    await challenge.body?.cancel();
  });

  it("the anonymous curl with x-bsv-payment: a txid that is not on chain is refused, not served", async () => {
    const res = await fetch(`${net.url}/api/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "x-bsv-payment": randomBytes(32).toString("hex") },
      body: BODY,
    });
    expect(res.status).toBe(402);
  });
});

describe("BSVAPI seed: for businesses (metered keys, invoiced monthly)", () => {
  // POST /api/v1/chat/completions, exactly as the seed writes it: a Bearer key, no payment header.
  const SEED_BODY = JSON.stringify({ model: "grok-3", messages: [{ role: "user", content: "..." }] });
  const call = (key: string) =>
    fetch(`${net.url}/api/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: SEED_BODY,
    });
  const get = async (path: string, key: string) =>
    (await (await fetch(`${net.url}${path}`, { headers: { Authorization: `Bearer ${key}` } })).json()) as any;
  const month = () => new Date().toISOString().slice(0, 7);
  const gatewayDir = () => join(net.dir, "gateway");
  const ledger = () => net.gateway.gateway.ledger;
  /** What providers and the gateway have earned, all told (msat). */
  const earned = async () => {
    let sum = 0;
    for (const [account, msat] of (await ledger().audit()).balances)
      if (account.startsWith("provider:") || account === "equity:fees") sum += msat;
    return sum;
  };
  const payIn = async (key: string, sats: number) => {
    const res = await fetch(`${net.url}/v1/balance/topup`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({ token: await net.token(sats) }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as any;
  };

  it("← 200 with no payment header, metered to the account; the statement bills it; paying closes it", async () => {
    const { id, key } = await createBusinessKey(gatewayDir(), "partner", "yourcompany", undefined, 100_000);
    expect(key).toMatch(/^bsvapi_sk_yourcompany_/);
    const earnedBefore = await earned();

    const res = await call(key);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.choices[0].message).toEqual({ role: "assistant", content: SCRIPTED_ANSWER });
    // Partner tier: 25 % off, paid from the account (nothing was paid up front).
    expect(body.payment).toMatchObject({ method: "account", discount_pct: 25 });

    const owed = -(await ledger().balance(Accounts.user(id)));
    expect(owed).toBeGreaterThan(0);
    expect(await get("/v1/balance", key)).toMatchObject({
      balance_sats: 0,
      credit_limit_sats: 100_000,
      owed_msat: owed,
    });
    const bill = await get(`/v1/account/statement?month=${month()}`, key);
    expect(bill).toMatchObject({
      tier: "partner",
      discount_pct: 25,
      billing: "metered",
      credit_limit_sats: 100_000,
    });
    expect(bill.totals).toMatchObject({
      requests: 1,
      charged_msat: owed,
      deposited_msat: 0,
      opening_balance_msat: 0,
      closing_balance_msat: -owed,
      amount_due_msat: owed,
    });
    // What the key owes is exactly what providers and the gateway earned: the books balance.
    expect((await earned()) - earnedBefore).toBe(owed);
    expect((await ledger().audit()).imbalanceMsat).toBe(0);

    // Paying (an ecash deposit) reduces what is owed first; the rest is balance.
    const paid = Math.ceil(owed / 1000) + 5;
    const after = await payIn(key, paid);
    expect(after).toMatchObject({ deposited_sats: paid, owed_msat: 0 });
    expect(await ledger().balance(Accounts.user(id))).toBe(paid * 1000 - owed);
    const settled = await get(`/v1/account/statement?month=${month()}`, key);
    expect(settled.totals).toMatchObject({
      charged_msat: owed,
      deposited_msat: paid * 1000,
      closing_balance_msat: paid * 1000 - owed,
      amount_due_msat: 0,
      net_msat: paid * 1000 - owed,
    });
    expect(settled.lines.map((l: any) => l.type)).toEqual(["request", "deposit"]);
    const audit = await ledger().audit();
    expect(audit.imbalanceMsat).toBe(0);
  });

  it("a key at its limit → 402 with the amount needed and how to pay; the operator's new limit applies at once", async () => {
    const { id, key } = await createBusinessKey(gatewayDir(), "external", "acme", undefined, 1);
    const refused = await call(key);
    expect(refused.status).toBe(402);
    const first = ((await refused.json()) as any).error;
    expect(first.type).toBe("insufficient_balance");
    const required: number = first.required_sats;
    expect(required).toBeGreaterThan(1);
    expect(first).toMatchObject({ owed_msat: 0, credit_limit_msat: 1000, amount_needed_sats: required - 1 });
    expect(first.hint).toMatch(/\/v1\/balance\/topup/);

    // The operator raises the limit to exactly one request's hold: served, then owing its charge.
    expect(await setBusinessCreditLimit(gatewayDir(), id, required)).toBe(true);
    expect((await call(key)).status).toBe(200);
    const owed = -(await ledger().balance(Accounts.user(id)));
    expect(owed).toBeGreaterThan(0);
    const atLimit = await call(key);
    expect(atLimit.status).toBe(402);
    const second = ((await atLimit.json()) as any).error;
    // Short by exactly what it owes: paying that much serves the next request.
    expect(second).toMatchObject({ owed_msat: owed, amount_needed_sats: Math.ceil(owed / 1000) });
    await payIn(key, second.amount_needed_sats);
    expect((await call(key)).status).toBe(200);
    expect(await ledger().balance(Accounts.user(id))).toBeGreaterThanOrEqual(-required * 1000);
    expect((await ledger().audit()).imbalanceMsat).toBe(0);
  });

  it("concurrent requests at the limit: never more owed than the limit, every charge on the statement", async () => {
    const { id, key } = await createBusinessKey(gatewayDir(), "internal", "race", undefined, 1);
    const probe = ((await (await call(key)).json()) as any).error;
    const limit = 2 * probe.required_sats + probe.required_sats - 1; // room for 2 holds at once, not 3
    await setBusinessCreditLimit(gatewayDir(), id, limit);
    const statuses = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await call(key);
        await res.body?.cancel();
        return res.status;
      }),
    );
    for (const s of statuses) expect([200, 402]).toContain(s);
    const served = statuses.filter((s) => s === 200).length;
    expect(served).toBeGreaterThanOrEqual(2);
    const balance = await ledger().balance(Accounts.user(id));
    expect(balance).toBeGreaterThanOrEqual(-limit * 1000);
    expect(await ledger().activeHolds()).toEqual([]);
    const bill = await get(`/v1/account/statement?month=${month()}`, key);
    expect(bill.totals).toMatchObject({
      requests: served,
      amount_due_msat: -balance,
      closing_balance_msat: balance,
    });
    expect((await ledger().audit()).imbalanceMsat).toBe(0);
  });

  it("a prepaid business key (no credit limit) still refuses at zero balance, as before", async () => {
    const { key } = await createBusinessKey(gatewayDir(), "partner", null);
    const res = await call(key);
    expect(res.status).toBe(402);
    const err = ((await res.json()) as any).error;
    expect(err.type).toBe("insufficient_balance");
    expect(err.credit_limit_msat).toBeUndefined();
    const bill = await get(`/v1/account/statement?month=${month()}`, key);
    expect(bill).toMatchObject({ billing: "prepaid", credit_limit_sats: 0 });
    expect(bill.totals.amount_due_msat).toBe(0);
  });
});
