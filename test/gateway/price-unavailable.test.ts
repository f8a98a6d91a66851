/**
 * The BTC/USD rate a gateway prices with: a configured feed that never gives a sane sample must not
 * become an invented rate. Paid requests answer 503 until a good sample arrives; an explicit
 * `--btc-usd` still prices (the devnet's way). The feed is a small local HTTP server.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let feed: Server;
let feedUrl: string;
/** what the feed answers: a price out of any sane range */
const answer = { USD: 3 };

beforeAll(async () => {
  feed = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(answer));
  });
  await new Promise<void>((r) => feed.listen(0, "127.0.0.1", r));
  feedUrl = `http://127.0.0.1:${(feed.address() as AddressInfo).port}/btc`;
});
afterAll(() => new Promise<void>((r) => feed.close(() => r())));

const price = (gw: CliProcess) =>
  fetch(`${gw.url}/v1/price`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
  });

describe("price feed without a sane sample", () => {
  let gw: CliProcess;
  let agent: Agent;
  beforeAll(async () => {
    gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--price-feed", feedUrl]);
    agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
  });
  afterAll(async () => {
    await agent?.close();
    await gw?.stop();
  });

  it("answers paid requests 503 price_unavailable and spends nothing, instead of inventing a rate", async () => {
    const quoted = await price(gw);
    expect(quoted.status).toBe(503);
    expect(((await quoted.json()) as any).error.type).toBe("price_unavailable");

    const mintUrl = `${gw.url}/mint`;
    const wallet = await newWallet(mintUrl);
    const token = getEncodedToken({ mint: mintUrl, proofs: await mintProofs(wallet, 20) });
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error).toMatchObject({ type: "price_unavailable" });
    expect(sumAmounts(await wallet.receive(token))).toBe(20); // never claimed

    const rate = (await (await fetch(`${gw.url}/v1/oracle/rate`)).json()) as any;
    expect(rate.status).toBe("unavailable");
    expect(rate.btc_usd).not.toBe(100_000);
  });
});

describe("price feed without a sane sample, with an explicit --btc-usd", () => {
  it("prices at the operator's rate", async () => {
    const gw = await startCli([
      "gateway",
      "--port",
      "0",
      "--data-dir",
      tempDir(),
      "--price-feed",
      feedUrl,
      "--btc-usd",
      "50000",
    ]);
    const agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"] });
    try {
      const quoted = await price(gw);
      expect(quoted.status).toBe(200);
      expect(((await quoted.json()) as any).btc_usd).toBe(50_000);
    } finally {
      await agent.close();
      await gw.stop();
    }
  });
});
