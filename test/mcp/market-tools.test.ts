/**
 * The market_* tools end to end: two MCP servers over Streamable HTTP, each acting for its own
 * gateway account (OWLRUN_GATEWAY_API_KEY), against an in-process gateway and mint. The buyer posts,
 * the worker quotes and changes the quote, they talk, the buyer accepts (escrow), the worker
 * delivers, the buyer reads the file and confirms, the worker collects over Lightning. The wrong
 * party is refused in words; a server without a key says how to set one; the books balance.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMcpHttp, startMcpHttp } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { externalInvoice } from "../support/blinded.js";
import { tempDir } from "../support/cli-process.js";
import {
  balanceOf,
  escrowOf,
  expectBooksBalance,
  type MarketNet,
  startMarketNet,
} from "../market/harness.js";
import { callOk, callText, type Connected, connect } from "./harness.js";

let net: MarketNet;
let buyerKey: string;
let workerKey: string;
const servers: RunningMcpHttp[] = [];
const clients: Connected[] = [];

async function mcpFor(gatewayApiKey: string | undefined, maxPerCallSat = 1000): Promise<Connected> {
  const server = await startMcpHttp({
    gatewayUrl: net.url,
    dataDir: tempDir("owlrun-mcp-market-"),
    port: 0,
    maxPerCallSat,
    maxPerDaySat: 10_000,
    gatewayApiKey,
    log: silentLogger,
  });
  servers.push(server);
  const c = await connect(server);
  clients.push(c);
  return c;
}

let buyer: Connected;
let worker: Connected;

beforeAll(async () => {
  net = await startMarketNet();
  [buyerKey, workerKey] = await Promise.all([net.account(1000), net.account(30)]);
  [buyer, worker] = await Promise.all([mcpFor(buyerKey), mcpFor(workerKey)]);
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  await net?.close();
});

describe("market tools", () => {
  it("the whole flow through the tools, two accounts", async () => {
    const task = await callOk(buyer.client, "market_create", {
      title: "Write a limerick about sats",
      description: "Five lines, AABBA.",
      budget_sats: 500,
      deadline_hours: 24,
    });
    expect(task).toMatchObject({ state: "open", fee_sats: 50, paid_with: "balance", role: "buyer" });

    const listed = await callOk(worker.client, "market_list");
    expect(listed.tasks.map((t: { id: string }) => t.id)).toContain(task.id);
    expect((await callOk(worker.client, "market_get", { task_id: task.id })).task.role).toBeNull();

    const quote = await callOk(worker.client, "market_quote", {
      task_id: task.id,
      price_sats: 400,
      description: "in ten minutes",
    });
    expect(quote).toMatchObject({ state: "pending", price_sats: 400, fee_sats: 10, mine: true });
    const edited = await callText(worker.client, "market_quote", {
      task_id: task.id,
      quote_id: quote.id,
      price_sats: 300,
    });
    expect(edited.structured).toMatchObject({ price_sats: 300, fee_sats: 0 });
    expect(edited.text).toContain("300 sats");

    await callOk(buyer.client, "market_message", {
      task_id: task.id,
      quote_id: quote.id,
      body: "Deal at 300?",
    });
    const thread = await callOk(worker.client, "market_message", {
      task_id: task.id,
      quote_id: quote.id,
      body: "Deal.",
    });
    expect(thread.messages.map((m: { from: string; body: string }) => `${m.from}: ${m.body}`)).toEqual([
      "buyer: Deal at 300?",
      "worker: Deal.",
    ]);

    const seen = await callOk(buyer.client, "market_get", { task_id: task.id });
    expect(seen.task.quotes).toEqual([expect.objectContaining({ id: quote.id, price_sats: 300 })]);
    const accepted = await callText(buyer.client, "market_accept", { task_id: task.id, quote_id: quote.id });
    expect(accepted.isError, accepted.text).toBe(false);
    expect(accepted.structured).toMatchObject({ state: "accepted", escrow: "locked", escrow_sats: 300 });
    expect(accepted.text).toContain("300 sats locked in escrow");
    expect(await escrowOf(net, task.id)).toBe(300_000);
    // The escrow counts against the MCP server's daily spend limit.
    expect((await callOk(buyer.client, "balance")).spent_today_sats).toBe(300);

    // The wrong party hears why, in the gateway's words.
    const wrong = await callText(worker.client, "market_confirm", { task_id: task.id });
    expect(wrong).toMatchObject({ isError: true });
    expect(wrong.text).toContain("only the task's buyer can confirm the delivery");
    const early = await callText(buyer.client, "market_confirm", { task_id: task.id });
    expect(early.text).toContain("the worker has not delivered yet");

    const limerick = "A worker who wanted some sats\nwrote verses for bitcoiner cats\n";
    const delivered = await callOk(worker.client, "market_deliver", {
      task_id: task.id,
      filename: "limerick.txt",
      content: limerick,
      notes: "first two lines as a sample",
    });
    expect(delivered).toMatchObject({ state: "delivered", delivery: { filename: "limerick.txt" } });

    const got = await callOk(buyer.client, "market_get", { task_id: task.id, include_delivery: true });
    expect(got.delivery).toMatchObject({ filename: "limerick.txt", content_text: limerick });
    const strangerView = await callOk(worker.client, "market_get", {
      task_id: task.id,
      include_delivery: true,
    });
    expect(strangerView.delivery.content_text).toBe(limerick); // the hired worker may read it too

    const confirmed = await callOk(buyer.client, "market_confirm", { task_id: task.id });
    expect(confirmed).toMatchObject({ state: "paid", escrow: "released" });
    expect(await balanceOf(net, workerKey)).toBe(30 - 10 + 300);

    const collected = await callOk(worker.client, "market_collect", { invoice: externalInvoice(250) });
    expect(collected).toMatchObject({ state: "paid", amount_sats: 250 });

    const me = await callText(worker.client, "market_me");
    expect(me.structured).toMatchObject({ balance_sats: 320 - 250 - collected.fee_sats, escrowed_sats: 0 });
    expect(me.structured.work).toEqual([expect.objectContaining({ id: task.id, state: "paid" })]);
    expect(me.text).toContain("tasks you were hired for:");
    const buyerMe = await callOk(buyer.client, "market_me");
    expect(buyerMe).toMatchObject({ balance_sats: 1000 - 50 - 300, escrowed_sats: 0 });

    await expectBooksBalance(net);
  });

  it("accepting above the per-call limit asks the user, and without elicitation is refused with nothing locked", async () => {
    const careful = await mcpFor(buyerKey, 100);
    const task = await callOk(careful.client, "market_create", {
      title: "Translate a menu",
      budget_sats: 200,
    });
    const quote = await callOk(worker.client, "market_quote", { task_id: task.id, price_sats: 150 });
    const refused = await callText(careful.client, "market_accept", { task_id: task.id, quote_id: quote.id });
    expect(refused.isError).toBe(true);
    expect(refused.text).toMatch(/refused: lock 150 sats in escrow .* above the per-call limit of 100 sats/);
    expect(await escrowOf(net, task.id)).toBe(0);
    expect((await callOk(careful.client, "market_get", { task_id: task.id })).task.state).toBe("quoted");
  });

  it("without an account key the market tools say how to set one; browsing still works", async () => {
    const anon = await mcpFor(undefined);
    for (const [name, args] of [
      ["market_create", { title: "x", budget_sats: 1 }],
      ["market_me", {}],
      ["market_confirm", { task_id: "t" }],
    ] as const) {
      const r = await callText(anon.client, name, args);
      expect(r.isError, name).toBe(true);
      expect(r.text).toContain("no account key");
      expect(r.text).toContain(`${net.url}/v1/auth/register`);
      expect(r.text).toContain("OWLRUN_GATEWAY_API_KEY");
    }
    const list = await callOk(anon.client, "market_list", { state: "all" });
    expect(list.tasks.length).toBeGreaterThan(0);
  });
});
