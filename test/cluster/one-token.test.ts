/**
 * One X-Cashu token, 100 concurrent requests spread over three gateway processes on one PostgreSQL
 * (issue 20): exactly one is served, the other 99 are refused with 402 token_spent and take
 * nothing (no change, no hold, no charge), and the shared books show exactly one charge.
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { ClusterNet } from "../support/cluster-net.js";
import { expectBooksClosed, sumAccounts } from "../support/money.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let net: ClusterNet;
let agent: Agent;

beforeAll(async () => {
  net = await ClusterNet.start({ gateways: 3 });
  agent = await startAgent(net.urls()[1]!, { models: [MODEL], reply: ["one"] });
  await net.online([MODEL]);
}, 90_000);
afterAll(async () => {
  await agent?.close();
  await net?.stop();
});

describe("one token, 100 concurrent requests over three gateway processes", () => {
  it("serves exactly one, refuses 99 without touching the money, and charges once", async () => {
    const wallet = await newWallet(net.mintUrl);
    const token = getEncodedToken({ mint: net.mintUrl, proofs: await mintProofs(wallet, 64) });
    const urls = net.urls();
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        fetch(`${urls[i % urls.length]}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", "x-cashu": token },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
        }).then(async (r) => ({
          status: r.status,
          change: r.headers.get("x-cashu-change"),
          body: (await r.json()) as any,
        })),
      ),
    );
    const served = results.filter((r) => r.status === 200);
    expect(served).toHaveLength(1);
    const refused = results.filter((r) => r.status !== 200);
    expect(refused.map((r) => `${r.status} ${r.body.error?.type}`)).toEqual(
      Array.from({ length: 99 }, () => "402 token_spent"),
    );
    expect(refused.every((r) => r.change === null)).toBe(true);
    const cost = served[0]!.body.usage.cost.sats as number;
    expect(sumAmounts(await wallet.receive(served[0]!.change!))).toBe(64 - cost);

    // The shared books: balanced, nothing open or owed, and the gateways' ecash is the one charge.
    const books = await net.books();
    expectBooksClosed(books, JSON.stringify(Object.fromEntries(books.balances)));
    expect(books.ecashMsat).toBe(cost * 1000);
    expect(sumAccounts(books, "user:")).toBe(0);
  });
});
