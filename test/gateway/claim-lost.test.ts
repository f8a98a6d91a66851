/**
 * Regression: the mint swapped a client's token but its answer never reached the gateway (a
 * dropped connection here; a kill -9 mid-swap is the same). The client's proofs are spent, so the
 * value must reach the client: the gateway asks the mint for its outputs (NUT-09) and serves the
 * request; when the mint cannot answer that either, the next start restores the value and credits
 * it — X-Cashu change under the request id, or the balance of the raw-token session. Before the fix
 * the request failed with 503, the token was gone, and a restart put the value in the gateway's
 * wallet with no ledger entry for anyone.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FlakyProxy, startFlakyProxy } from "../support/flaky-proxy.js";
import { readGatewayBooks, sumAccounts } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
const dir = tempDir("owlrun-claim-lost-");
let mint: CliProcess;
let proxy: FlakyProxy;
let gw: CliProcess;
let agent: Agent;
let wallet: Wallet;

const startGateway = () => startCli(["gateway", "--port", "0", "--data-dir", dir, "--mint-url", proxy.url]);
const tokenOf = async (sats: number) =>
  getEncodedToken({ mint: proxy.url, proofs: await mintProofs(wallet, sats) });
const chat = (headers: Record<string, string>) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
  });

/** The books balance and the ledger's ecash is exactly the wallet's unspent proofs. */
async function expectBooksMatchWallet() {
  const books = await readGatewayBooks(join(dir, "gateway"), proxy.url);
  expect(books.imbalanceMsat).toBe(0);
  expect(books.notUnspent).toBe(0);
  expect(books.ecashMsat).toBe(books.poolSat * 1000);
  expect(sumAccounts(books, "change:")).toBe(0);
}

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  proxy = await startFlakyProxy(mint.url);
  gw = await startGateway();
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["one", " two"] });
  wallet = await newWallet(proxy.url);
});
afterAll(async () => {
  await agent?.close();
  await gw?.stop();
  await proxy?.close();
  await mint?.stop();
});

describe("a swap whose answer is lost", () => {
  it("X-Cashu: the gateway finds its outputs at the mint and serves the request", async () => {
    const token = await tokenOf(40);
    proxy.dropAnswers.set("/v1/swap", 1);
    const res = await chat({ "x-cashu": token });
    expect(proxy.dropAnswers.get("/v1/swap")).toBe(0); // the answer was indeed lost
    expect(res.status).toBe(200);
    const body = (await res.json()) as { usage: { cost: { sats: number } } };
    const change = sumAmounts(await wallet.receive(res.headers.get("x-cashu-change")!));
    expect(change + body.usage.cost.sats).toBe(40);
    await expectBooksMatchWallet();
  });

  it("X-Cashu, mint unreachable until a restart: the value comes back as change under the request id", async () => {
    const token = await tokenOf(30);
    const requestId = randomUUID();
    proxy.dropAnswers.set("/v1/swap", 1);
    // The mint's NUT-19 cache would answer the wallet's retry: make it unreachable after the loss.
    proxy.onDrop = () => proxy.refuse.add("/v1/swap");
    proxy.refuse.add("/v1/restore");
    const res = await chat({ "x-cashu": token, "x-owlrun-request-id": requestId });
    expect(res.status).toBe(503);
    expect((await fetch(`${gw.url}/v1/cashu/change/${requestId}`)).status).toBe(404);

    proxy.refuse.clear();
    proxy.onDrop = undefined;
    await agent.close();
    await gw.stop();
    gw = await startGateway();
    agent = await startAgent(gw.url, { models: [MODEL], reply: ["one", " two"] });
    const stored = await fetch(`${gw.url}/v1/cashu/change/${requestId}`);
    expect(stored.status).toBe(200);
    const { token: change, change_sats } = (await stored.json()) as { token: string; change_sats: number };
    expect(change_sats).toBe(30);
    expect(sumAmounts(await wallet.receive(change))).toBe(30);
    await expectBooksMatchWallet();
  });

  it("a raw token as the Bearer key: after a restart the same token opens its funded session", async () => {
    const token = await tokenOf(25);
    proxy.dropAnswers.set("/v1/swap", 1);
    // The mint's NUT-19 cache would answer the wallet's retry: make it unreachable after the loss.
    proxy.onDrop = () => proxy.refuse.add("/v1/swap");
    proxy.refuse.add("/v1/restore");
    expect((await chat({ authorization: `Bearer ${token}` })).status).toBe(503);

    proxy.refuse.clear();
    proxy.onDrop = undefined;
    await agent.close();
    await gw.stop();
    gw = await startGateway();
    agent = await startAgent(gw.url, { models: [MODEL], reply: ["one", " two"] });
    const balance = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await balance.json()) as { balance_sats: number }).balance_sats).toBe(25);
    const served = await chat({ authorization: `Bearer ${token}` });
    expect(served.status).toBe(200);
    await expectBooksMatchWallet();
  });
});
