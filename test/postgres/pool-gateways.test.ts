/**
 * Two gateways (two processes' worth: each its own data dir and connection pool) on one PostgreSQL
 * share the ecash pool through the real mint and the real cashu-ts wallet: change paid by one is
 * claimable at the other, concurrent swaps in both never blind the same NUT-13 secret (the mint
 * would refuse outputs it already signed), and both see one balance.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { testDatabase } from "../support/postgres.js";

const MODEL = "owlrun-test-scripted:tiny";
let database: { url: string; drop(): Promise<void> };
const dbs: PgDatabase[] = [];
let a: RunningGateway;
let b: RunningGateway;
let agent: Agent;
let client: Wallet;
let mintUrl: string;
let purse: Proof[] = [];

async function pay(sats: number): Promise<string> {
  const { send, keep } = await client.send(sats, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

beforeAll(async () => {
  database = await testDatabase("gateways");
  dbs.push(await PgDatabase.open(database.url, { max: 6 }), await PgDatabase.open(database.url, { max: 6 }));
  const dir = tempDir();
  const common = { port: 0, payoutIntervalMs: 0, sweepIntervalMs: 0, topupPollMs: 0, log: silentLogger };
  a = await startGateway({
    ...common,
    dataDir: join(dir, "a"),
    trustedMints: [],
    database: dbs[0],
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
  });
  mintUrl = `${a.url}/mint`;
  b = await startGateway({ ...common, dataDir: join(dir, "b"), trustedMints: [mintUrl], database: dbs[1] });
  client = await newWallet(mintUrl);
  purse = await mintProofs(client, 1000);
  agent = await startAgent(a.url, { models: [MODEL], reply: ["ok"] });
});
afterAll(async () => {
  await agent?.close();
  await a?.close();
  await b?.close();
  await Promise.all(dbs.map((d) => d.close()));
  await database?.drop();
});

describe("two gateways on one PostgreSQL pool", () => {
  it("change paid by one gateway is claimable at the other", async () => {
    const id = randomUUID();
    const res = await fetch(`${a.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": await pay(40), "x-owlrun-request-id": id },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
    });
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
    purse.push(...(await client.receive(change)));
  });

  it("concurrent swaps in both gateways use distinct counters and pay from one pool", async () => {
    const tokens: string[] = [];
    for (let i = 0; i < 16; i++) tokens.push(await pay(3 + (i % 5))); // one purse: one at a time
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
    const redeemed = await Promise.all(paid.map((t) => client.receive(t)));
    expect(redeemed.reduce((s, ps) => s + sumAmounts(ps), 0)).toBe(paidSat);
  });
});
