/**
 * The marketplace over HTTP with two funded accounts: post a task, quote, change the quote, talk,
 * accept (escrow locked), deliver a file, confirm (escrow released), collect over Lightning, `me`.
 * Also: fees paid per request with X-Cashu (change back), the delivery size limit, a collect whose
 * payment fails. After each, the gateway's books balance against the ecash it holds.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Accounts } from "../../gateway/ledger/index.js";
import { externalInvoice } from "../support/blinded.js";
import { balanceOf, escrowOf, expectBooksBalance, type MarketNet, startMarketNet } from "./harness.js";

let net: MarketNet;
let failing: string | undefined;
const MAX_DELIVERY = 64 * 1024;

beforeAll(async () => {
  net = await startMarketNet({
    market: { maxDeliveryBytes: MAX_DELIVERY },
    failOutgoing: (invoice) => invoice === failing,
  });
});
afterAll(async () => {
  await net?.close();
});

describe("the whole flow, buyer and worker", () => {
  it("task → quote → messages → accept → deliver → confirm → collect, with the money where it belongs", async () => {
    const { api } = net;
    const buyer = await net.account(1000);
    const worker = await net.account(20);

    // Fees at the offline rate (100,000 USD/BTC): $0.05 = 50 sats, $0.01 = 10 sats.
    const info = (await api("/v1/market/info")).body;
    expect(info).toMatchObject({
      task_fee_sats: 50,
      task_fee_usd: 0.05,
      quote_fee_sats: 10,
      quote_fee_usd: 0.01,
    });

    const created = await api("/v1/market/tasks", buyer, {
      title: "Summarize this PDF",
      description: "Extract key points from a 10-page research paper",
      budget_sats: 500,
    });
    expect(created.status).toBe(201);
    const task = created.body;
    expect(task).toMatchObject({
      state: "open",
      budget_sats: 500,
      fee_sats: 50,
      paid_with: "balance",
      role: "buyer",
      quotes: [],
      delivery: null,
      escrow: "none",
    });
    expect(await balanceOf(net, buyer)).toBe(950);

    // Anyone can list and read it; a stranger sees no quotes.
    const list = (await api("/v1/market/tasks")).body;
    expect(list.tasks.map((t: { id: string }) => t.id)).toContain(task.id);
    const anon = (await api(`/v1/market/tasks/${task.id}`)).body;
    expect(anon.role).toBeNull();
    expect(anon).not.toHaveProperty("quotes");

    const quoted = await api(`/v1/market/tasks/${task.id}/quotes`, worker, {
      price_sats: 400,
      description: "I can summarize this in 5 minutes",
    });
    expect(quoted.status).toBe(201);
    const quote = quoted.body;
    expect(quote).toMatchObject({ state: "pending", price_sats: 400, fee_sats: 10, mine: true });
    expect(await balanceOf(net, worker)).toBe(10);

    const patched = await api(
      `/v1/market/tasks/${task.id}/quotes/${quote.id}`,
      worker,
      { price_sats: 350, description: "Updated: can do it for 350 sats" },
      { method: "PATCH" },
    );
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ price_sats: 350, description: "Updated: can do it for 350 sats" });

    const seen = (await api(`/v1/market/tasks/${task.id}`, buyer)).body;
    expect(seen).toMatchObject({ state: "quoted", quotes_count: 1, role: "buyer" });
    expect(seen.quotes).toEqual([expect.objectContaining({ id: quote.id, price_sats: 350, mine: false })]);
    expect((await api(`/v1/market/tasks/${task.id}`, worker)).body.role).toBe("quoter");

    const thread = `/v1/market/tasks/${task.id}/quotes/${quote.id}/messages`;
    expect((await api(thread, buyer, { body: "Can you do this for 300 sats?" })).status).toBe(201);
    expect((await api(thread, worker, { body: "350 is my best price." })).status).toBe(201);
    for (const key of [buyer, worker]) {
      const { messages } = (await api(thread, key)).body;
      expect(messages.map((m: { from: string; body: string }) => [m.from, m.body])).toEqual([
        ["buyer", "Can you do this for 300 sats?"],
        ["worker", "350 is my best price."],
      ]);
    }

    const accepted = await api(`/v1/market/tasks/${task.id}/quotes/${quote.id}/accept`, buyer, {});
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({
      state: "accepted",
      accepted_quote_id: quote.id,
      price_sats: 350,
      escrow: "locked",
      escrow_sats: 350,
    });
    expect(await balanceOf(net, buyer)).toBe(600);
    expect(await escrowOf(net, task.id)).toBe(350_000);
    expect((await api(`/v1/market/tasks/${task.id}`, worker)).body.role).toBe("worker");

    const file = Buffer.from("The key points are: 1) ecash, 2) escrow, 3) Lightning.\n");
    const sha = createHash("sha256").update(file).digest("hex");
    const delivered = await api(`/v1/market/tasks/${task.id}/deliver`, worker, {
      filename: "summary.txt",
      content_base64: file.toString("base64"),
      notes: "Summary attached",
    });
    expect(delivered.status).toBe(200);
    expect(delivered.body).toMatchObject({
      state: "delivered",
      delivery: { filename: "summary.txt", size_bytes: file.length, sha256: sha, notes: "Summary attached" },
    });
    expect(Date.parse(delivered.body.review_ends_at)).toBeGreaterThan(Date.now());

    const got = await api(`/v1/market/tasks/${task.id}/delivery`, buyer);
    expect(got.status).toBe(200);
    expect(Buffer.from(got.body.content_base64, "base64")).toEqual(file);
    expect(got.body.sha256).toBe(sha);

    const confirmed = await api(`/v1/market/tasks/${task.id}/confirm`, buyer, {});
    expect(confirmed.status).toBe(200);
    expect(confirmed.body).toMatchObject({ state: "paid", escrow: "released", escrow_sats: 0 });
    expect(await escrowOf(net, task.id)).toBe(0);
    expect(await balanceOf(net, worker)).toBe(360);

    // The worker takes 300 sats out over Lightning (the routing fee comes off the balance too).
    const collected = await api("/v1/market/collect", worker, {
      invoice: externalInvoice(300),
      amount_sats: 300,
    });
    expect(collected.status).toBe(200);
    expect(collected.body).toMatchObject({ state: "paid", amount_sats: 300 });
    const fee = collected.body.fee_sats as number;
    expect(fee).toBeGreaterThanOrEqual(0);
    expect(collected.body.balance_sats).toBe(60 - fee);

    const me = (await api("/v1/market/me", worker)).body;
    expect(me).toMatchObject({ balance_sats: 60 - fee, escrowed_sats: 0, tasks: [] });
    expect(me.work).toEqual([expect.objectContaining({ id: task.id, state: "paid", role: "worker" })]);
    expect(me.quotes).toEqual([expect.objectContaining({ id: quote.id, state: "accepted", mine: true })]);
    expect(me.collections).toEqual([expect.objectContaining({ state: "paid", amount_sats: 300 })]);
    const mine = (await api("/v1/market/me", buyer)).body;
    expect(mine.tasks).toEqual([expect.objectContaining({ id: task.id, role: "buyer" })]);

    const books = await expectBooksBalance(net);
    expect(books.get(Accounts.marketFees)).toBe(60_000);
  });
});

describe("paying fees per request with X-Cashu", () => {
  it("a token pays the fee of an account with no balance; the rest comes back as change", async () => {
    const buyer = await net.account(0);
    const res = await net.api(
      "/v1/market/tasks",
      buyer,
      { title: "Translate a poem", budget_sats: 100 },
      { headers: { "x-cashu": await net.token(64) } },
    );
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ fee_sats: 50, paid_with: "x-cashu", change_sats: 14 });
    const change = res.headers.get("x-cashu-change")!;
    expect(change).toMatch(/^cashuB/);
    // The same change stays claimable by the request id (a client that lost the answer).
    const id = res.headers.get("x-owlrun-request-id")!;
    const again = await net.api(`/v1/cashu/change/${id}`, undefined);
    expect(again.body).toMatchObject({ token: change, change_sats: 14 });
    expect(await balanceOf(net, buyer)).toBe(0);
    // The change is real ecash: it deposits.
    const dep = await net.api(
      "/v1/balance/topup",
      undefined,
      { token: change },
      {
        headers: { authorization: `Bearer ${buyer}` },
      },
    );
    expect(dep.body.deposited_sats).toBe(14);

    // A refused request gives the whole token back.
    const refused = await net.api(
      `/v1/market/tasks/${res.body.id}/quotes`,
      buyer,
      { price_sats: 10 },
      { headers: { "x-cashu": await net.token(20) } },
    );
    expect(refused.status).toBe(403);
    const back = refused.headers.get("x-cashu-change")!;
    const dep2 = await net.api(
      "/v1/balance/topup",
      undefined,
      { token: back },
      {
        headers: { authorization: `Bearer ${buyer}` },
      },
    );
    expect(dep2.body.deposited_sats).toBe(20);

    // A token too small for the fee is refused before it is claimed.
    const small = await net.api(
      "/v1/market/tasks",
      buyer,
      { title: "x", budget_sats: 1 },
      { headers: { "x-cashu": await net.token(8) } },
    );
    expect(small.status).toBe(402);
    expect(small.body.error.type).toBe("insufficient_balance");
    await expectBooksBalance(net);
  });

  it("without balance or token, posting is refused with what it costs and how to pay", async () => {
    const broke = await net.account(0);
    const res = await net.api("/v1/market/tasks", broke, { title: "x", budget_sats: 1 });
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({
      type: "insufficient_balance",
      balance_sats: 0,
      required_sats: 50,
    });
    expect(res.body.error.message).toContain("POST /v1/balance/topup");
    expect((await net.api("/v1/market/me", broke)).body.tasks).toEqual([]);
  });
});

describe("deliveries and collects at the edges", () => {
  async function acceptedTask(price: number) {
    const buyer = await net.account(price + 60);
    const worker = await net.account(10);
    const task = (await net.api("/v1/market/tasks", buyer, { title: "edge", budget_sats: price })).body;
    const quote = (await net.api(`/v1/market/tasks/${task.id}/quotes`, worker, { price_sats: price })).body;
    expect((await net.api(`/v1/market/tasks/${task.id}/quotes/${quote.id}/accept`, buyer, {})).status).toBe(
      200,
    );
    return { buyer, worker, task };
  }

  it("a delivery over the size limit is refused with 413; one at the limit is stored with its hash", async () => {
    const { worker, task } = await acceptedTask(30);
    const deliver = (bytes: number) =>
      net.api(`/v1/market/tasks/${task.id}/deliver`, worker, {
        filename: "big.bin",
        content_base64: Buffer.alloc(bytes, 7).toString("base64"),
      });
    const over = await deliver(MAX_DELIVERY + 1);
    expect(over.status).toBe(413);
    expect(over.body.error.message).toContain(`limit is ${MAX_DELIVERY}`);
    expect((await deliver(4 * MAX_DELIVERY)).status).toBe(413); // refused while reading the body
    const path = await net.api(`/v1/market/tasks/${task.id}/deliver`, worker, {
      filename: "../etc/passwd",
      content_base64: "AA==",
    });
    expect(path.status).toBe(400);
    const ok = await deliver(MAX_DELIVERY);
    expect(ok.status).toBe(200);
    expect(ok.body.delivery).toMatchObject({
      size_bytes: MAX_DELIVERY,
      sha256: createHash("sha256").update(Buffer.alloc(MAX_DELIVERY, 7)).digest("hex"),
    });
  });

  it("a collect whose Lightning payment fails leaves the balance as it was", async () => {
    const { buyer, worker, task } = await acceptedTask(200);
    await net.api(`/v1/market/tasks/${task.id}/deliver`, worker, {
      filename: "a.txt",
      content_base64: "aGk=",
    });
    await net.api(`/v1/market/tasks/${task.id}/confirm`, buyer, {});
    expect(await balanceOf(net, worker)).toBe(200);
    failing = externalInvoice(150);
    const res = await net.api("/v1/market/collect", worker, { invoice: failing });
    expect(res.status).toBe(502);
    expect(res.body.error.type).toBe("payment_failed");
    expect(await balanceOf(net, worker)).toBe(200);
    expect((await net.api("/v1/market/me", worker)).body.collections[0]).toMatchObject({ state: "failed" });
    // More than the balance (with the fee reserve): refused before anything is paid.
    const tooMuch = await net.api("/v1/market/collect", worker, { invoice: externalInvoice(199) });
    expect(tooMuch.status).toBe(402);
    expect((await net.api("/v1/market/me", worker)).body.collections).toHaveLength(1);
    const mismatch = await net.api("/v1/market/collect", worker, {
      invoice: externalInvoice(50),
      amount_sats: 40,
    });
    expect(mismatch.status).toBe(400);
    await expectBooksBalance(net);
  });
});
