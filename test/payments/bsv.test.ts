/**
 * BSVAPI-style payments end to end: the gateway CLI with `--payment-methods bsv,l402` and a chain
 * API at the edge (a small local HTTP server speaking WhatsOnChain's `GET /tx/hash/{txid}`).
 * The 402 advertises the BSV satoshis; a txid paying the gateway's address pays one request and
 * comes back as a `payment` receipt; replays, unknown, foreign and short transactions are refused
 * without a charge, and the books balance at the end.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeServer, listen } from "../../src/shared/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { postJson, readBooks } from "../support/payments.js";

const MODEL = "owlrun-test-scripted:tiny";
const ADDRESS = "1OwlrunGatewayTestAddressxxxxxxxx";
const BSV_PER_SAT = 3;
const CHAT = { model: MODEL, messages: [{ role: "user", content: "What is the answer?" }], max_tokens: 20 };

/** WhatsOnChain at the edge: transactions the test "broadcast", and a switch to fail. */
const chain = new Map<string, { to: string; satoshis: number }[]>();
let chainDown = false;
let chainServer: Server;
let dir: string;
let gw: CliProcess;
let agent: Agent;
let receiptsMsat = 0;

function broadcast(outputs: { to: string; satoshis: number }[]): string {
  const txid = randomBytes(32).toString("hex");
  chain.set(txid, outputs);
  return txid;
}

const post = (headers: Record<string, string> = {}, body: unknown = CHAT) =>
  postJson(`${gw.url}/v1/chat/completions`, body, headers);

beforeAll(async () => {
  const app = express();
  app.get("/v1/bsv/main/tx/hash/:txid", (req, res) => {
    if (chainDown) return void res.status(500).send("down");
    const outs = chain.get(req.params.txid);
    if (!outs) return void res.status(404).send("not found");
    res.json({
      txid: req.params.txid,
      confirmations: 1,
      vout: outs.map((o, n) => ({
        value: o.satoshis / 1e8,
        n,
        scriptPubKey: { addresses: [o.to], type: "pubkeyhash" },
      })),
    });
  });
  chainServer = createServer(app);
  const chainUrl = await listen(chainServer, "127.0.0.1", 0);
  dir = tempDir();
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--fake-delay-ms",
    "20",
    "--payment-methods",
    "bsv,l402",
    "--bsv-chain-api",
    `${chainUrl}/v1/bsv/main`,
    "--bsv-address",
    ADDRESS,
    "--bsv-per-sat",
    String(BSV_PER_SAT),
  ]);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["The", " answer", " is", " 42", "."] });
});
afterAll(async () => {
  await agent?.close();
  await gw?.stop();
  await closeServer(chainServer);
});

describe("BSV payments", () => {
  it("the 402 advertises the BSV satoshis (price × ratio) next to L402, and no X-Cashu when it is off", async () => {
    const price = (await (await postJson(`${gw.url}/v1/price`, CHAT)).json()) as any;
    expect(price.bsv_satoshis).toBe(price.sats * BSV_PER_SAT);
    // An X-Cashu token is not a credential here: the answer is the challenge.
    const res = await post({ "x-cashu": "cashuBnotused" });
    expect(res.status).toBe(402);
    expect(res.headers.get("x-bsv-payment-satoshis-required")).toBe(String(price.bsv_satoshis));
    expect(res.headers.get("www-authenticate")).toMatch(/^L402 macaroon="/);
    expect(res.headers.get("x-cashu")).toBeNull();
    const body = (await res.json()) as any;
    expect(body.error.bsv).toEqual({ satoshis_required: price.bsv_satoshis, address: ADDRESS });
    const info = (await (await fetch(`${gw.url}/v1/info`)).json()) as any;
    expect(info.payment_methods.sort()).toEqual(["bsv", "l402"]);
  });

  it("a txid paying the address pays once, with a BSVAPI receipt; the replay is refused", async () => {
    const required = Number((await post()).headers.get("x-bsv-payment-satoshis-required"));
    const txid = broadcast([
      { to: "1SomeoneElse", satoshis: 999 },
      { to: ADDRESS, satoshis: required },
    ]);
    const res = await post({ "x-bsv-payment": txid });
    expect(res.status).toBe(200);
    const data = (await res.json()) as any;
    expect(data.choices[0].message.content).toBe("The answer is 42.");
    expect(data.payment).toMatchObject({
      method: "bsv",
      txid,
      satoshisPaid: required,
      amount_sats: required / BSV_PER_SAT,
    });
    receiptsMsat += data.payment.amount_sats * 1000;
    const replay = await post({ "x-bsv-payment": txid });
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as any).error.type).toBe("token_spent");
  });

  it("a payment above the price is charged the price; the rest stays on the txid for the next requests", async () => {
    const required = Number((await post()).headers.get("x-bsv-payment-satoshis-required"));
    const price = required / BSV_PER_SAT;
    const txid = broadcast([{ to: ADDRESS, satoshis: required * 3 }]);
    for (let i = 0; i < 3; i++) {
      const res = await post({ "x-bsv-payment": txid });
      expect(res.status, `use ${i + 1}`).toBe(200);
      const data = (await res.json()) as any;
      expect(data.payment).toMatchObject({ method: "bsv", txid, amount_sats: price });
      receiptsMsat += data.payment.amount_sats * 1000;
    }
    // All of it was used: the txid is spent now.
    const after = await post({ "x-bsv-payment": txid });
    expect(after.status).toBe(401);
    expect(((await after.json()) as any).error.type).toBe("token_spent");
  });

  it("refuses unknown, malformed, foreign and short transactions without using them", async () => {
    const cases: [string, number, string][] = [
      [randomBytes(32).toString("hex"), 402, "payment_required"], // not on chain
      ["nothex", 401, "invalid_token"],
      [broadcast([{ to: "1SomeoneElse", satoshis: 5000 }]), 401, "invalid_token"],
    ];
    const short = broadcast([{ to: ADDRESS, satoshis: BSV_PER_SAT }]); // 1 sat: below the 2-sat floor
    cases.push([short, 402, "insufficient_balance"]);
    for (const [txid, status, type] of cases) {
      const res = await post({ "x-bsv-payment": txid });
      expect(res.status, txid).toBe(status);
      expect(((await res.json()) as any).error.type).toBe(type);
    }
    // The short payment is kept (owed, see the books) and refused the same way again.
    expect((await post({ "x-bsv-payment": short })).status).toBe(402);
  });

  it("a chain API that is down is a 503, not a charge", async () => {
    chainDown = true;
    try {
      const res = await post({ "x-bsv-payment": broadcast([{ to: ADDRESS, satoshis: 100 }]) });
      expect(res.status).toBe(503);
    } finally {
      chainDown = false;
    }
  });

  it("the books balance: BSV received equals what is owed plus what was earned", async () => {
    await agent.close();
    await gw.stop();
    const books = await readBooks(`${dir}/gateway`);
    expect(books.imbalanceMsat).toBe(0);
    for (const [account, msat] of books.balances)
      if (!account.startsWith("asset:")) expect(msat, account).toBeGreaterThanOrEqual(0);
    expect(books.earnedMsat).toBe(receiptsMsat);
    expect(books.balances.get(`asset:bsv:${ADDRESS}`)).toBe(books.earnedMsat + books.owedMsat);
    expect(books.ecashMsat).toBe(0);
    gw = await startCli(["gateway", "--port", "0", "--data-dir", dir]);
  });
});
