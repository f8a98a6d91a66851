/**
 * Paying without an account, end to end on loopback: `owlrun-mcp gateway` (bundled mint, fake
 * Lightning) as a child process, a provider speaking the Owlrun protocol, the official `openai`
 * client, a real cashu-ts wallet, and a Lightning payer at the edge. Covers the 402 challenge (L402
 * + NUT-24 + price), L402 settle-once with replay and tampering, NUT-24 payment, 402ai top-up and
 * claim, business keys with statements, and ends with the ledger check.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { decodePaymentRequest, getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { bytesToBase64, importMacaroon, newMacaroon } from "macaroon";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { L402Payments, sha256Hex } from "../../gateway/payments/l402.js";
import { SqliteAccountStore } from "../../gateway/payments/accounts.js";
import { OneShotStore } from "../../gateway/payments/oneshot.js";
import { PriceTable } from "../../gateway/payments/pricing.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { CLI, type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { payInvoice } from "../support/lightning.js";
import { postJson, readBooks } from "../support/payments.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { waitFor } from "../mcp/harness.js";

const MODEL = "owlrun-test-scripted:tiny";
const CHAT = { model: MODEL, messages: [{ role: "user", content: "What is the answer?" }], max_tokens: 20 };
let dir: string;
let gw: CliProcess;
let mintUrl: string;
let wallet: Wallet;
let purse: Proof[] = [];
let agent: Agent;
/** a node that refuses every job: requests to it are never served */
let busy: Agent;
const BUSY = "owlrun-test-busy:tiny";
/** what the clients were charged, by receipt */
let receiptsMsat = 0;

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  postJson(`${gw.url}${path}`, body, headers);

async function challenge(body: unknown = CHAT, path = "/v1/chat/completions") {
  const res = await post(path, body);
  expect(res.status).toBe(402);
  const www = res.headers.get("www-authenticate")!;
  const m = /^L402 macaroon="([^"]+)", invoice="([^"]+)"$/.exec(www)!;
  expect(m).not.toBeNull();
  return {
    res,
    body: (await res.json()) as any,
    macaroon: m[1]!,
    invoice: m[2]!,
    cashu: res.headers.get("x-cashu"),
  };
}

beforeAll(async () => {
  dir = tempDir();
  gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 500);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] });
  busy = await startAgent(gw.url, { models: [BUSY], rejectWith: "busy" });
  await waitFor(async () => {
    const m = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
    return m.data.some((x) => x.id === BUSY) || undefined;
  });
});
afterAll(async () => {
  await busy?.close();
  await agent?.close();
  await gw?.stop();
});

describe("402 challenge and price", () => {
  it("POST /v1/price answers the sats a request is challenged at; bad bodies are 400", async () => {
    const price = (await (await post("/v1/price", CHAT)).json()) as any;
    expect(price).toMatchObject({ model: MODEL, max_tokens: 20, sats: expect.any(Number) });
    expect(price.msat).toBe(price.sats * 1000);
    const c = await challenge();
    expect(c.body.error).toMatchObject({ type: "payment_required", code: 402, amount_sats: price.sats });
    // The invoice is for exactly that amount, and the NUT-24 request lists the gateway's mint.
    const req = decodePaymentRequest(c.cashu!);
    expect(Number(req.amount)).toBe(price.sats);
    expect(req.unit).toBe("sat");
    expect(req.mints).toEqual([mintUrl]);
    expect(c.body.error.l402.invoice).toBe(c.invoice);
    const bad = await post("/v1/price", { model: MODEL });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).error.type).toBe("invalid_request");
  });

  it("a bad Bearer key stays 401, and no invoice is made for it", async () => {
    const res = await post("/v1/chat/completions", CHAT, { authorization: "Bearer rc_nope" });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBeNull();
  });
});

describe("L402", () => {
  it("pays the invoice, settles once with a receipt, and refuses the replay", async () => {
    const c = await challenge();
    const preimage = await payInvoice(c.invoice);
    const client = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { Authorization: `L402 ${c.macaroon}:${preimage}` },
    });
    const data = (await client.chat.completions.create(CHAT as any)) as any;
    expect(data.choices[0].message.content).toBe("The answer is 42.");
    expect(data.payment).toMatchObject({
      method: "l402",
      amount_sats: c.body.error.amount_sats,
      payment_hash: sha256Hex(preimage),
    });
    receiptsMsat += data.payment.amount_sats * 1000;
    const replay = await post("/v1/chat/completions", CHAT, {
      authorization: `L402 ${c.macaroon}:${preimage}`,
    });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error.type).toBe("token_spent");
  });

  it("the same fresh credential sent three times at once pays exactly one request", async () => {
    const c = await challenge();
    const preimage = await payInvoice(c.invoice);
    const results = await Promise.all(
      [1, 2, 3].map(() =>
        post("/v1/chat/completions", CHAT, { authorization: `L402 ${c.macaroon}:${preimage}` }),
      ),
    );
    const bodies = (await Promise.all(results.map((r) => r.json()))) as any[];
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const [i, r] of results.entries()) {
      if (r.status === 200) receiptsMsat += bodies[i].payment.amount_sats * 1000;
      else expect([r.status, bodies[i].error.type]).toEqual([401, "token_spent"]);
    }
  });

  it("a request that is not served uses nothing: the credential pays for the next one", async () => {
    const c = await challenge();
    const cred = { authorization: `L402 ${c.macaroon}:${await payInvoice(c.invoice)}` };
    const refused = await post("/v1/chat/completions", { ...CHAT, model: BUSY }, cred);
    expect(refused.status).toBe(503);
    const served = await post("/v1/chat/completions", CHAT, cred);
    expect(served.status).toBe(200);
    receiptsMsat += ((await served.json()) as any).payment.amount_sats * 1000;
  });

  it("refuses tampered credentials without charging or using them up", async () => {
    const c = await challenge();
    const preimage = await payInvoice(c.invoice);
    const other = await challenge();
    const otherPreimage = await payInvoice(other.invoice);
    const send = (cred: string, path = "/v1/chat/completions", body: unknown = CHAT) =>
      post(path, body, { authorization: `L402 ${cred}` });
    // The same caveats signed with another root key: a forgery.
    const forged = newMacaroon({
      identifier: importMacaroon(c.macaroon).identifier,
      rootKey: randomBytes(32),
    });
    forged.addFirstPartyCaveat(`payment_hash = ${sha256Hex(preimage)}`);
    forged.addFirstPartyCaveat("route = /v1/chat/completions");
    forged.addFirstPartyCaveat(`expires = ${Math.floor(Date.now() / 1000) + 600}`);
    const cases = [
      `${c.macaroon}:${"00".repeat(32)}`, // wrong preimage
      `${c.macaroon}:${otherPreimage}`, // another invoice's preimage
      `${c.macaroon.slice(0, -8)}AAAAAAAA:${preimage}`, // bytes changed
      `${bytesToBase64(forged.exportBinary())}:${preimage}`, // signed with another key
      `${c.macaroon}:nothex`,
      "garbage",
    ];
    for (const cred of cases) {
      const res = await send(cred);
      expect(res.status, cred.slice(-20)).toBe(401);
      expect(((await res.json()) as any).error.type).toBe("invalid_token");
    }
    // Bound to its route: a chat credential does not pay for /v1/completions.
    const wrongRoute = await send(`${c.macaroon}:${preimage}`, "/v1/completions", {
      model: MODEL,
      prompt: "hi",
      max_tokens: 20,
    });
    expect(wrongRoute.status).toBe(401);
    // None of that used the credentials up: both still pay once.
    for (const [mac, pre] of [
      [c.macaroon, preimage],
      [other.macaroon, otherPreimage],
    ]) {
      const ok = await send(`${mac}:${pre}`);
      expect(ok.status).toBe(200);
      receiptsMsat += ((await ok.json()) as any).payment.amount_sats * 1000;
    }
  });

  it("streams with the payment receipt as the last event before [DONE]", async () => {
    const body = { ...CHAT, stream: true };
    const c = await challenge(body);
    const preimage = await payInvoice(c.invoice);
    const res = await post("/v1/chat/completions", body, { authorization: `L402 ${c.macaroon}:${preimage}` });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .split("\n\n")
      .filter((e) => e.startsWith("data: "))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const last = JSON.parse(events.at(-2)!);
    expect(last.choices).toEqual([]);
    expect(last.payment).toMatchObject({ method: "l402", amount_sats: c.body.error.amount_sats });
    receiptsMsat += last.payment.amount_sats * 1000;
  });

  it("a macaroon past its expiry is refused (same mint, a gateway key with a short TTL)", async () => {
    const d = tempDir();
    const w = await GatewayWallet.open(d, [mintUrl], silentLogger);
    const ledger = Ledger.open(d);
    const store = new OneShotStore(`${d}/payments.sqlite`);
    const l402 = new L402Payments(d, w, ledger, store, -1);
    expect(statSync(`${d}/l402-root-key`).mode & 0o777).toBe(0o600);
    const c = await l402.challenge("/v1/chat/completions", 5);
    const preimage = await payInvoice(c.invoice);
    await expect(
      l402.open({ macaroon: c.macaroon, preimage }, "/v1/chat/completions", 2),
    ).rejects.toMatchObject({
      status: 401,
      message: expect.stringContaining("expired"),
    });
    expect(store.get(`l402:${c.paymentHash}`)!.state).toBe("pending");
    store.close();
    await ledger.close();
    await w.close();
  });
});

describe("NUT-24", () => {
  it("a Cashu wallet pays the X-Cashu payment request of the 402 directly", async () => {
    const c = await challenge();
    const req = decodePaymentRequest(c.cashu!);
    const { send, keep } = await wallet.send(Number(req.amount), purse);
    purse = keep;
    const token = getEncodedToken({ mint: req.mints![0]!, proofs: send });
    const res = await post("/v1/chat/completions", CHAT, { "x-cashu": token });
    expect(res.status).toBe(200);
    const data = (await res.json()) as any;
    expect(data.payment).toMatchObject({ method: "xcashu", amount_sats: data.usage.cost.sats });
    receiptsMsat += data.payment.amount_sats * 1000;
    const change = res.headers.get("x-cashu-change");
    if (change) purse.push(...(await wallet.receive(change)));
  });
});

describe("402ai prepaid tokens", () => {
  it("top-up → claim → bearer token; refill the same token; claims cannot be replayed", async () => {
    const top = (await (await post("/v1/topup", { amount_sats: 40 })).json()) as any;
    expect(top).toMatchObject({ amount_sats: 40, refill: false });
    const preimage = await payInvoice(top.invoice);
    const wrong = await post("/v1/topup/claim", { preimage: "11".repeat(32) });
    expect(wrong.status).toBe(401);
    const claim = (await (await post("/v1/topup/claim", { preimage })).json()) as any;
    expect(claim).toMatchObject({ amount_sats: 40, balance_sats: 40, token: expect.stringMatching(/^abl_/) });
    const again = await post("/v1/topup/claim", { preimage });
    expect(again.status).toBe(401);
    expect(((await again.json()) as any).error.type).toBe("token_spent");

    const auth = { authorization: `Bearer ${claim.token}` };
    const used = (await (await post("/v1/chat/completions", CHAT, auth)).json()) as any;
    expect(used.payment).toMatchObject({ method: "account", amount_sats: 2 });
    receiptsMsat += used.payment.amount_sats * 1000;

    // 402ai's X-Token header names the same key.
    const viaXToken = await fetch(`${gw.url}/v1/balance`, { headers: { "x-token": claim.token } });
    expect(((await viaXToken.json()) as any).balance_sats).toBe(38);
    const refill = (await (await post("/v1/topup", { amount_sats: 10 }, auth)).json()) as any;
    expect(refill.refill).toBe(true);
    const pre2 = await payInvoice(refill.invoice);
    const wrongToken = await post("/v1/topup/claim", { preimage: pre2, token: "sk-other" });
    expect(wrongToken.status).toBe(401);
    const refilled = (await (
      await post("/v1/topup/claim", { preimage: pre2, token: claim.token })
    ).json()) as any;
    expect(refilled).toEqual({ amount_sats: 10, balance_sats: 48 });
    const badRefill = await post("/v1/topup", { amount_sats: 10 }, { authorization: "Bearer sk-nope" });
    expect(badRefill.status).toBe(401);
  });

  it("the claim secret (for wallets that show no preimage) claims once; a guessed one is refused", async () => {
    const top = (await (await post("/v1/topup", { amount_sats: 15 })).json()) as any;
    expect(top.claim_secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    const both = await post("/v1/topup/claim", { claim_secret: top.claim_secret, preimage: "11".repeat(32) });
    expect(both.status).toBe(400);
    const guessed = await post("/v1/topup/claim", { claim_secret: "x".repeat(32) });
    expect(guessed.status).toBe(401);
    await payInvoice(top.invoice);
    const claimed = (await (await post("/v1/topup/claim", { claim_secret: top.claim_secret })).json()) as any;
    expect(claimed).toMatchObject({
      amount_sats: 15,
      balance_sats: 15,
      token: expect.stringMatching(/^abl_/),
    });
    const again = await post("/v1/topup/claim", { claim_secret: top.claim_secret });
    expect(again.status).toBe(401);
    const bal = await fetch(`${gw.url}/v1/balance`, {
      headers: { authorization: `Bearer ${claimed.token}` },
    });
    expect(((await bal.json()) as any).balance_sats).toBe(15);
  });
});

describe("business keys", () => {
  it("discounts the charge by tier, in the one place prices are computed", () => {
    const prices = new PriceTable({ big: { per_m_input_usd: 10, per_m_output_usd: 30 } });
    const full = prices.chargeSat("big", 10_000, 100_000, 100_000);
    expect(full).toBe(3100);
    expect(prices.chargeSat("big", 10_000, 100_000, 100_000, 25)).toBe(2325);
    expect(prices.chargeSat("big", 10_000, 100_000, 100_000, 50)).toBe(1550);
    expect(prices.chargeSat("big", 1, 1, 100_000, 50)).toBe(2); // the floor still holds
  });

  it("operator CLI makes a tiered key; usage is metered to it; the statement sums to the ledger", async () => {
    const key = execFileSync(
      process.execPath,
      [CLI, "gateway", "business-key", "--tier", "partner", "--data-dir", dir],
      {
        encoding: "utf8",
      },
    ).trim();
    expect(key).toMatch(/^bsvapi_sk_/);
    const auth = { authorization: `Bearer ${key}` };
    // Metered, not free: an unfunded business key gets no free tier.
    const unfunded = await post("/v1/chat/completions", CHAT, auth);
    expect(unfunded.status).toBe(402);
    expect(((await unfunded.json()) as any).error.type).toBe("insufficient_balance");
    const { send, keep } = await wallet.send(30, purse);
    purse = keep;
    const dep = await post(
      "/v1/balance/topup",
      { token: getEncodedToken({ mint: mintUrl, proofs: send }) },
      auth,
    );
    expect(dep.status).toBe(200);
    let charged = 0;
    for (let i = 0; i < 3; i++) {
      const r = (await (await post("/v1/chat/completions", CHAT, auth)).json()) as any;
      expect(r.payment).toMatchObject({ method: "account", discount_pct: 25 });
      charged += r.payment.amount_sats;
    }
    receiptsMsat += charged * 1000;
    const month = new Date().toISOString().slice(0, 7);
    const st = (await (
      await fetch(`${gw.url}/v1/account/statement?month=${month}`, { headers: auth })
    ).json()) as any;
    expect(st).toMatchObject({ tier: "partner", discount_pct: 25, month });
    expect(st.totals).toMatchObject({ requests: 3, charged_msat: charged * 1000, deposited_msat: 30_000 });
    expect(st.totals.net_msat).toBe(30_000 - charged * 1000);
    const balance = (await (await fetch(`${gw.url}/v1/balance`, { headers: auth })).json()) as any;
    expect(balance.balance_sats * 1000).toBe(st.totals.net_msat);
    const csv = await (
      await fetch(`${gw.url}/v1/account/statement?month=${month}&format=csv`, { headers: auth })
    ).text();
    const rows = csv.trim().split("\n");
    expect(rows[0]).toBe("date,type,ref,memo,amount_msat");
    expect(rows).toHaveLength(1 + st.lines.length + 1);
    const sum = rows.slice(1, -1).reduce((s, r) => s + Number(r.split(",").at(-1)), 0);
    expect(sum).toBe(st.totals.net_msat);
    expect(Number(rows.at(-1)!.split(",").at(-1))).toBe(st.totals.net_msat);
    const bad = await fetch(`${gw.url}/v1/account/statement?month=2024-13`, { headers: auth });
    expect(bad.status).toBe(400);
    const anon = await fetch(`${gw.url}/v1/account/statement?month=${month}`);
    expect(anon.status).toBe(401);
  });
});

describe("business keys: credit limits from the operator's shell", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, "gateway", "business-key", ...args, "--data-dir", tempCliDir], {
      encoding: "utf8",
    });
  const tempCliDir = tempDir();
  const accountsFile = () => join(tempCliDir, "gateway", "accounts.sqlite");

  it("--credit-limit-sats makes a metered bsvapi_sk_ key; --set-credit-limit --key-id changes it", async () => {
    const made = cli("--tier", "partner", "--name", "Your Company", "--credit-limit-sats", "500");
    expect(made.status).toBe(0);
    const key = made.stdout.trim();
    expect(key).toMatch(/^bsvapi_sk_your_company_[A-Za-z0-9_-]{32}$/);
    const id = /key id: (\S+)/.exec(made.stderr)?.[1];
    expect(id).toBeDefined();
    const read = async () => {
      const store = new SqliteAccountStore(accountsFile());
      try {
        return await store.byKey(key);
      } finally {
        store.close();
      }
    };
    expect(await read()).toMatchObject({ id, tier: "partner", credit_limit_sat: 500 });
    const set = cli("--set-credit-limit", "900", "--key-id", id!);
    expect(set.status).toBe(0);
    expect(set.stdout).toContain("900 sats");
    expect((await read())?.credit_limit_sat).toBe(900);
    // No such key, a negative or fractional limit, or no key id: refused, nothing changed.
    expect(cli("--set-credit-limit", "5", "--key-id", "nope").status).not.toBe(0);
    expect(cli("--set-credit-limit", "-1", "--key-id", id!).status).not.toBe(0);
    expect(cli("--set-credit-limit", "5").status).not.toBe(0);
    expect(cli("--tier", "partner", "--credit-limit-sats", "lots").status).not.toBe(0);
    expect((await read())?.credit_limit_sat).toBe(900);
  });
});

describe("books", () => {
  it("balance: claims equal the ecash held, and charges equal what the receipts said", async () => {
    await busy.close();
    await agent.close();
    await gw.stop();
    const books = await readBooks(`${dir}/gateway`, mintUrl);
    expect(books.imbalanceMsat).toBe(0);
    expect(books.ecashMsat).toBe(books.walletMsat);
    expect(books.earnedMsat).toBe(receiptsMsat);
    expect(books.ecashMsat).toBe(books.earnedMsat + books.owedMsat);
    for (const [account, msat] of books.balances) expect(msat, account).toBeGreaterThanOrEqual(0);
    gw = await startCli(["gateway", "--port", "0", "--data-dir", dir]);
  });
});
