/**
 * Who may do what, and when: every action by the wrong party is refused (403) and every action in
 * the wrong state too (409), with a clear error; missed deadlines refund the escrow; undisputed
 * deliveries are released after the review window and disputed ones are not; two concurrent
 * accepts of two quotes on one task → exactly one wins. The books balance after all of it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TASK_STATES, TASK_TRANSITIONS } from "../../gateway/market/index.js";
import {
  balanceOf,
  escrowOf,
  expectBooksBalance,
  HOUR,
  type MarketNet,
  type Res,
  setTaskTime,
  startMarketNet,
} from "./harness.js";

const REVIEW_MS = 24 * HOUR;
let net: MarketNet;

beforeAll(async () => {
  net = await startMarketNet({ market: { reviewWindowMs: REVIEW_MS } });
});
afterAll(async () => {
  await net?.close();
});

interface Cast {
  buyer: string;
  worker: string;
  rival: string;
  stranger: string;
  task: string;
  quote: string;
  rivalQuote: string;
}

/** A task with two quotes: the worker's (price 100) and a rival's (price 120). */
async function quotedTask(deadlineHours?: number): Promise<Cast> {
  const [buyer, worker, rival, stranger] = await Promise.all([
    net.account(500),
    net.account(20),
    net.account(20),
    net.account(100),
  ]);
  const task = (
    await net.api("/v1/market/tasks", buyer, {
      title: "Write a haiku about escrow",
      budget_sats: 150,
      ...(deadlineHours ? { deadline_hours: deadlineHours } : {}),
    })
  ).body.id;
  const quote = (await net.api(`/v1/market/tasks/${task}/quotes`, worker, { price_sats: 100 })).body.id;
  const rivalQuote = (await net.api(`/v1/market/tasks/${task}/quotes`, rival, { price_sats: 120 })).body.id;
  return { buyer, worker, rival, stranger, task, quote, rivalQuote };
}

const t = (c: Cast) => `/v1/market/tasks/${c.task}`;
const accept = (c: Cast, quote = c.quote, key = c.buyer) =>
  net.api(`${t(c)}/quotes/${quote}/accept`, key, {});
const deliver = (c: Cast, key = c.worker) =>
  net.api(`${t(c)}/deliver`, key, {
    filename: "haiku.txt",
    content_base64: Buffer.from("locked sats wait").toString("base64"),
  });

function refused(res: Res, status: 403 | 409, message: RegExp): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error.type).toBe(status === 403 ? "forbidden" : "invalid_state");
  expect(res.body.error.message).toMatch(message);
}

describe("every forbidden action by the wrong party", () => {
  it("before, during and after the work, each party can do only its own part", async () => {
    const c = await quotedTask();
    const { api } = net;
    const edit = (quote: string, key: string) =>
      api(`${t(c)}/quotes/${quote}`, key, { price_sats: 1 }, { method: "PATCH" });
    const thread = (quote: string) => `${t(c)}/quotes/${quote}/messages`;

    // Quotes: only their author edits them; the buyer cannot quote their own task; one quote per worker.
    refused(await edit(c.quote, c.stranger), 403, /only the quote's author can change the quote/);
    refused(await edit(c.quote, c.buyer), 403, /only the quote's author/);
    refused(await edit(c.quote, c.rival), 403, /only the quote's author/);
    refused(await api(`${t(c)}/quotes`, c.buyer, { price_sats: 5 }), 403, /the buyer cannot quote/);
    refused(await api(`${t(c)}/quotes`, c.worker, { price_sats: 90 }), 409, /already quoted/);
    // Messages: only the buyer and the quote's author, reading or writing.
    for (const key of [c.stranger, c.rival]) {
      refused(await api(thread(c.quote), key), 403, /only the task's buyer and the quote's author/);
      refused(
        await api(thread(c.quote), key, { body: "psst" }),
        403,
        /only the task's buyer and the quote's author/,
      );
    }
    // Only the buyer accepts.
    for (const key of [c.worker, c.rival, c.stranger])
      refused(await accept(c, c.quote, key), 403, /only the task's buyer can accept/);
    // Nothing to deliver, confirm or dispute yet.
    refused(await deliver(c), 403, /only the worker whose quote was accepted can deliver/);
    refused(
      await api(`${t(c)}/confirm`, c.buyer, {}),
      409,
      /cannot confirm the delivery: the task is quoted/,
    );
    refused(await api(`${t(c)}/dispute`, c.buyer, { reason: "no" }), 409, /the task is quoted/);
    refused(await api(`${t(c)}/cancel`, c.worker, {}), 403, /only the task's buyer can cancel/);
    expect((await api(`${t(c)}/delivery`, c.buyer)).status).toBe(404);

    expect((await accept(c)).status).toBe(200);
    // Accepted: the other quote is closed, the task takes no more quotes, only the hired worker delivers.
    refused(await accept(c, c.rivalQuote), 409, /cannot accept a quote: the task is accepted/);
    refused(await edit(c.rivalQuote, c.rival), 409, /the quote is rejected/);
    refused(await edit(c.quote, c.worker), 409, /the quote is accepted/);
    refused(
      await api(`${t(c)}/quotes`, c.stranger, { price_sats: 5 }),
      409,
      /cannot quote: the task is accepted/,
    );
    for (const key of [c.buyer, c.rival, c.stranger])
      refused(await deliver(c, key), 403, /only the worker whose quote was accepted/);
    refused(await api(`${t(c)}/confirm`, c.worker, {}), 403, /only the task's buyer can confirm/);
    refused(
      await api(`${t(c)}/confirm`, c.buyer, {}),
      409,
      /the task is accepted \(the worker has not delivered yet\)/,
    );
    refused(await api(`${t(c)}/cancel`, c.buyer, {}), 409, /cannot cancel the task: the task is accepted/);
    refused(await api(`${t(c)}/cancel`, c.stranger, {}), 403, /only the task's buyer can cancel/);

    expect((await deliver(c)).status).toBe(200);
    refused(await deliver(c), 409, /cannot deliver: the task is delivered/);
    for (const key of [c.rival, c.stranger])
      refused(await api(`${t(c)}/delivery`, key), 403, /only the task's buyer and the hired worker/);
    expect((await api(`${t(c)}/delivery`, c.worker)).status).toBe(200);
    for (const key of [c.worker, c.stranger]) {
      refused(await api(`${t(c)}/confirm`, key, {}), 403, /only the task's buyer can confirm/);
      refused(
        await api(`${t(c)}/dispute`, key, { reason: "mine" }),
        403,
        /only the task's buyer can dispute/,
      );
    }
    // The rival's thread stays readable by its two parties after the task moved on.
    expect((await api(thread(c.rivalQuote), c.rival, { body: "maybe next time" })).status).toBe(201);

    expect((await api(`${t(c)}/confirm`, c.buyer, {})).status).toBe(200);
    refused(await api(`${t(c)}/confirm`, c.buyer, {}), 409, /the task is paid/);
    refused(await api(`${t(c)}/cancel`, c.worker, {}), 409, /the task is paid/);
    refused(await api(`${t(c)}/dispute`, c.buyer, { reason: "late" }), 409, /the task is paid/);

    // Identity and existence.
    expect((await api(`${t(c)}/confirm`, undefined, {})).status).toBe(401);
    expect((await api(`${t(c)}/confirm`, "rc_nope", {})).status).toBe(401);
    const bearer = await net.api("/v1/market/me", undefined, undefined, {
      headers: { authorization: `Bearer ${c.worker}` },
    });
    expect(bearer.status).toBe(200);
    expect((await api("/v1/market/tasks/00000000-0000-4000-8000-000000000000", c.buyer)).status).toBe(404);
    const other = await quotedTask();
    expect((await api(`${t(c)}/quotes/${other.quote}/accept`, c.buyer, {})).status).toBe(404);
    await expectBooksBalance(net);
  });

  it("the transition table knows every state and no state is left without a way on or out", () => {
    const reached = new Set<string>(["open"]);
    for (const rule of Object.values(TASK_TRANSITIONS)) {
      for (const from of rule.from) expect(TASK_STATES).toContain(from);
      reached.add(rule.to);
    }
    expect([...reached].sort()).toEqual([...TASK_STATES].sort());
  });
});

describe("money on a clock", () => {
  it("a task not delivered before its deadline returns the escrow to the buyer", async () => {
    const c = await quotedTask(1);
    expect((await accept(c)).status).toBe(200);
    const before = await balanceOf(net, c.buyer);
    expect(await escrowOf(net, c.task)).toBe(100_000);
    expect(await net.gw.gateway.market.sweep()).toMatchObject({ expired: 0 });
    const report = await net.gw.gateway.market.sweep(Date.now() + 2 * HOUR);
    expect(report.expired).toBeGreaterThanOrEqual(1);
    const task = (await net.api(t(c), c.buyer)).body;
    expect(task).toMatchObject({ state: "expired", escrow: "refunded", escrow_sats: 0 });
    expect(await balanceOf(net, c.buyer)).toBe(before + 100);
    expect(await escrowOf(net, c.task)).toBe(0);
    refused(await deliver(c), 409, /cannot deliver: the task is expired/);
    // Sweeping again moves nothing twice.
    await net.gw.gateway.market.sweep(Date.now() + 3 * HOUR);
    expect(await balanceOf(net, c.buyer)).toBe(before + 100);
    await expectBooksBalance(net);
  });

  it("a task nobody was hired for just expires; a late delivery is refused before the sweeper runs", async () => {
    const open = await quotedTask(1);
    await net.gw.gateway.market.sweep(Date.now() + 2 * HOUR);
    const task = (await net.api(t(open), open.buyer)).body;
    expect(task.state).toBe("expired");
    expect(task.quotes.map((q: { state: string }) => q.state)).toEqual(["rejected", "rejected"]);

    const late = await quotedTask(1 / 60); // one minute
    expect((await accept(late)).status).toBe(200);
    setTaskTime(net, late.task, "deadline_at", Date.now() - 1);
    refused(await deliver(late), 409, /cannot deliver: the task's deadline passed/);
  });

  it("an undisputed delivery is released to the worker after the review window; a disputed one is not", async () => {
    const quiet = await quotedTask();
    const loud = await quotedTask();
    for (const c of [quiet, loud]) {
      await accept(c);
      expect((await deliver(c)).status).toBe(200);
    }
    const workerBefore = await balanceOf(net, quiet.worker);
    expect((await net.api(`${t(loud)}/dispute`, loud.buyer, { reason: "this is not a haiku" })).status).toBe(
      200,
    );

    await net.gw.gateway.market.sweep(Date.now() + REVIEW_MS / 2);
    expect((await net.api(t(quiet), quiet.buyer)).body.state).toBe("delivered");
    await net.gw.gateway.market.sweep(Date.now() + REVIEW_MS + HOUR);
    expect((await net.api(t(quiet), quiet.buyer)).body).toMatchObject({ state: "paid", escrow: "released" });
    expect(await balanceOf(net, quiet.worker)).toBe(workerBefore + 100);

    const disputed = (await net.api(t(loud), loud.buyer)).body;
    expect(disputed).toMatchObject({
      state: "disputed",
      dispute_reason: "this is not a haiku",
      escrow_sats: 100,
    });
    refused(
      await net.api(`${t(quiet)}/dispute`, quiet.buyer, { reason: "too late" }),
      409,
      /the task is paid/,
    );
    // Either side may end a dispute by giving in: here the worker refunds.
    const before = await balanceOf(net, loud.buyer);
    const refunded = await net.api(`${t(loud)}/cancel`, loud.worker, {});
    expect(refunded.body).toMatchObject({ state: "cancelled", escrow: "refunded" });
    expect(await balanceOf(net, loud.buyer)).toBe(before + 100);
    await expectBooksBalance(net);
  });

  it("the review window cannot be disputed once it closed, even before the sweeper ran", async () => {
    const c = await quotedTask();
    await accept(c);
    await deliver(c);
    setTaskTime(net, c.task, "review_ends_at", Date.now() - 1);
    refused(await net.api(`${t(c)}/dispute`, c.buyer, { reason: "late" }), 409, /the review window closed/);
    // The buyer may still confirm: it is what the sweeper would do.
    expect((await net.api(`${t(c)}/confirm`, c.buyer, {})).body.state).toBe("paid");
  });
});

describe("escrow under concurrency", () => {
  it("two concurrent accepts of two quotes on one task: exactly one wins, one price is locked", async () => {
    for (let round = 0; round < 5; round++) {
      const c = await quotedTask();
      const before = await balanceOf(net, c.buyer);
      const results = await Promise.all([accept(c, c.quote), accept(c, c.rivalQuote)]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([200, 409]);
      const winner = results.find((r) => r.status === 200)!.body;
      const price = winner.price_sats as number;
      expect([100, 120]).toContain(price);
      expect(await escrowOf(net, c.task)).toBe(price * 1000);
      expect(await balanceOf(net, c.buyer)).toBe(before - price);
      const quotes = (await net.api(t(c), c.buyer)).body.quotes;
      expect(quotes.map((q: { state: string }) => q.state).sort()).toEqual(["accepted", "rejected"]);
    }
    await expectBooksBalance(net);
  });

  it("the same quote accepted twice at once is locked once", async () => {
    const c = await quotedTask();
    const before = await balanceOf(net, c.buyer);
    const results = await Promise.all([accept(c), accept(c), accept(c)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect(await balanceOf(net, c.buyer)).toBe(before - 100);
  });

  it("an accept naming the agreed price is refused when the quote changed meanwhile", async () => {
    const c = await quotedTask();
    await net.api(`${t(c)}/quotes/${c.quote}`, c.worker, { price_sats: 140 }, { method: "PATCH" });
    refused(
      await net.api(`${t(c)}/quotes/${c.quote}/accept`, c.buyer, { price_sats: 100 }),
      409,
      /the quote's price is now 140 sats, not 100/,
    );
    expect((await net.api(t(c), c.buyer)).body).toMatchObject({ state: "quoted", escrow: "none" });
    expect((await net.api(`${t(c)}/quotes/${c.quote}/accept`, c.buyer, { price_sats: 140 })).status).toBe(
      200,
    );
    expect(await escrowOf(net, c.task)).toBe(140_000);
  });

  it("a buyer who cannot pay the escrow is refused and the task takes quotes again", async () => {
    const buyer = await net.account(60);
    const worker = await net.account(10);
    const task = (await net.api("/v1/market/tasks", buyer, { title: "expensive", budget_sats: 500 })).body.id;
    const quote = (await net.api(`/v1/market/tasks/${task}/quotes`, worker, { price_sats: 500 })).body.id;
    const res = await net.api(`/v1/market/tasks/${task}/quotes/${quote}/accept`, buyer, {});
    expect(res.status).toBe(402);
    expect(res.body.error).toMatchObject({
      type: "insufficient_balance",
      balance_sats: 10,
      required_sats: 500,
    });
    const after = (await net.api(`/v1/market/tasks/${task}`, buyer)).body;
    expect(after).toMatchObject({ state: "quoted", escrow: "none", accepted_quote_id: null });
    expect(after.quotes[0].state).toBe("pending");
    // Topped up, the same quote can be accepted.
    await net.api(
      "/v1/balance/topup",
      undefined,
      { token: await net.token(490) },
      {
        headers: { authorization: `Bearer ${buyer}` },
      },
    );
    expect((await net.api(`/v1/market/tasks/${task}/quotes/${quote}/accept`, buyer, {})).status).toBe(200);
    expect(await balanceOf(net, buyer)).toBe(0);
  });
});

describe("the books", () => {
  it("balance after all of it: each escrow holds exactly what its task shows locked, the rest is users' and fees", async () => {
    const books = await expectBooksBalance(net);
    const { tasks } = (await net.api("/v1/market/tasks?state=all&limit=100")).body;
    let shown = 0;
    for (const task of tasks) {
      expect(books.get(`escrow:${task.id}`) ?? 0, task.state).toBe(task.escrow_sats * 1000);
      shown += task.escrow_sats;
    }
    expect(shown).toBeGreaterThan(0); // tasks still accepted above keep their escrow
    expect(books.get("equity:market_fees")).toBe(
      tasks.length * 50_000 +
        tasks.reduce((s: number, t: { quotes_count: number }) => s + t.quotes_count, 0) * 10_000,
    );
  });
});
