/**
 * The market store's contract, the same cases on SQLite and on PostgreSQL. "Two processes" are two
 * store instances: two connections to one SQLite file, or two PgDatabase pools on one database.
 * The races check the invariants that hold the escrow together: a task transition happens once, a
 * quote is accepted once, a collection is finished once, a thread never passes its cap.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  MarketConflictError,
  MarketForbiddenError,
  MarketNotFoundError,
  type MarketStore,
  PgMarketStore,
  SqliteMarketStore,
} from "../../gateway/market/index.js";
import { MAX_THREAD_MESSAGES } from "../../gateway/market/store.js";
import { PgDatabase } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

interface Backend {
  /** another "process" on the same data */
  open(): Promise<MarketStore>;
  close(): Promise<void>;
}

const backends: [string, () => Promise<Backend>][] = [
  [
    "SQLite",
    async () => {
      const path = join(tempDir("owlrun-market-contract-"), "market.sqlite");
      const stores: MarketStore[] = [];
      return {
        async open() {
          const s = new SqliteMarketStore(path);
          stores.push(s);
          return s;
        },
        async close() {
          for (const s of stores) await s.close();
        },
      };
    },
  ],
  [
    "PostgreSQL",
    async () => {
      const db = await testDatabase("market");
      const pools: PgDatabase[] = [];
      return {
        async open() {
          const pool = await PgDatabase.open(db.url, { max: 6 });
          pools.push(pool);
          return PgMarketStore.open(pool);
        },
        async close() {
          for (const p of pools) await p.close();
          await db.drop();
        },
      };
    },
  ],
];

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 11, 6, 1, 0, 0);
const BUYER = "buyer-1";

/** Settles a batch of racing calls: how many won, and the errors of the rest. */
async function race<T>(calls: Promise<T>[]) {
  const out = await Promise.allSettled(calls);
  const won = out.filter((o) => o.status === "fulfilled") as PromiseFulfilledResult<T>[];
  const errors = out.filter((o) => o.status === "rejected").map((o) => (o as PromiseRejectedResult).reason);
  return { won: won.map((w) => w.value), errors };
}

describe.each(backends)("market store contract: %s", (_name, make) => {
  let backend: Backend;
  let a: MarketStore;
  let b: MarketStore;

  beforeEach(async () => {
    backend = await make();
    a = await backend.open();
    b = await backend.open();
  });
  afterEach(async () => {
    await backend.close();
  });

  const newTask = (store: MarketStore, over: { id?: string; createdAt?: number; deadlineAt?: number } = {}) =>
    store.createTask(
      {
        id: over.id ?? randomUUID(),
        buyerId: BUYER,
        title: "translate",
        description: "a page",
        budgetSats: 500,
        feeSats: 3,
        deadlineAt: over.deadlineAt ?? T0 + 24 * HOUR,
      },
      over.createdAt ?? T0,
    );
  const quote = (store: MarketStore, taskId: string, worker: string, price = 100, at = T0 + 1) =>
    store.addQuote(
      taskId,
      { id: randomUUID(), workerId: worker, priceSats: price, description: "I can", feeSats: 1 },
      at,
    );
  /** A task with a quote by worker-1 accepted and its escrow locked. */
  const accepted = async () => {
    const t = await newTask(a);
    const q = await quote(a, t.id, "worker-1");
    await a.beginAccept(t.id, q.id, BUYER, T0 + 2);
    await a.finishAccept(t.id, T0 + 3);
    return { task: t, quote: q };
  };
  const delivered = async (reviewMs = 72 * HOUR) => {
    const { task } = await accepted();
    await a.deliver(
      task.id,
      "worker-1",
      { filename: "out.txt", content: Buffer.from("done"), sha256: "x", notes: null },
      reviewMs,
      T0 + 4,
    );
    return task.id;
  };

  it("creates, reads and lists tasks, newest first, with their quote counts", async () => {
    const older = await newTask(a, { createdAt: T0 });
    const newer = await newTask(a, { createdAt: T0 + 10 });
    expect(older).toMatchObject({
      state: "open",
      escrow: "none",
      quotes_count: 0,
      budget_sats: 500,
      closed_at: null,
    });
    await quote(b, older.id, "worker-1");
    expect(await b.task(older.id)).toMatchObject({ state: "quoted", quotes_count: 1 });
    expect((await b.listTasks(["open", "quoted"], 10, 0)).map((t) => t.id)).toEqual([newer.id, older.id]);
    expect((await b.listTasks(["quoted"], 10, 0)).map((t) => t.id)).toEqual([older.id]);
    expect((await b.listTasks(["open", "quoted"], 1, 1)).map((t) => t.id)).toEqual([older.id]);
    expect(await a.task("nope")).toBeUndefined();
    await expect(a.mustTask("nope")).rejects.toBeInstanceOf(MarketNotFoundError);
    expect((await a.tasksOf("buyer", BUYER, 10)).length).toBe(2);
  });

  it("takes one quote per worker, none from the buyer or after the deadline, and edits only pending ones", async () => {
    const t = await newTask(a);
    const q = await quote(a, t.id, "worker-1", 100);
    expect(q).toMatchObject({ state: "pending", price_sats: 100, worker_id: "worker-1" });
    await expect(quote(b, t.id, "worker-1")).rejects.toThrow(/already quoted this task/);
    await expect(quote(b, t.id, BUYER)).rejects.toBeInstanceOf(MarketForbiddenError);
    await expect(quote(b, t.id, "worker-2", 100, T0 + 24 * HOUR)).rejects.toThrow(/deadline passed/);
    await expect(a.editQuote(t.id, q.id, "worker-2", { priceSats: 5 }, T0 + 2)).rejects.toBeInstanceOf(
      MarketForbiddenError,
    );
    expect(await b.editQuote(t.id, q.id, "worker-1", { priceSats: 90 }, T0 + 2)).toMatchObject({
      price_sats: 90,
      description: "I can",
    });
    await expect(a.mustQuote("other-task", q.id)).rejects.toBeInstanceOf(MarketNotFoundError);
    expect((await b.quotesBy("worker-1", 10)).map((x) => x.id)).toEqual([q.id]);
  });

  it("accepts in two steps, turns the other quotes down, and undoes an accept the buyer could not pay", async () => {
    const t = await newTask(a);
    const q1 = await quote(a, t.id, "worker-1", 100);
    const q2 = await quote(a, t.id, "worker-2", 80, T0 + 2);
    await expect(a.beginAccept(t.id, q1.id, BUYER, T0 + 3, 99)).rejects.toThrow(/price is now 100 sats/);
    const begun = await a.beginAccept(t.id, q1.id, BUYER, T0 + 3);
    expect(begun.task).toMatchObject({
      state: "accepted",
      escrow: "locking",
      worker_id: "worker-1",
      price_sats: 100,
    });
    expect(begun.quote.state).toBe("accepted");
    expect((await b.locking()).map((x) => x.id)).toEqual([t.id]);
    expect(await b.escrowedBy(BUYER)).toBe(100);
    // While the ledger lock is in flight no other transition may run.
    await expect(b.transition(t.id, "refund", { account: "worker-1" }, T0 + 4)).rejects.toThrow(
      /being accepted right now/,
    );
    await b.undoAccept(t.id, T0 + 4);
    expect(await a.task(t.id)).toMatchObject({
      state: "quoted",
      escrow: "none",
      worker_id: null,
      price_sats: null,
    });
    expect((await a.mustQuote(t.id, q1.id)).state).toBe("pending");
    await a.beginAccept(t.id, q2.id, BUYER, T0 + 5);
    expect(await b.finishAccept(t.id, T0 + 6)).toMatchObject({ escrow: "locked", price_sats: 80 });
    expect((await a.quotesOf(t.id)).map((q) => [q.id, q.state])).toEqual([
      [q1.id, "rejected"],
      [q2.id, "accepted"],
    ]);
    expect(await a.locking()).toEqual([]);
    expect(await a.escrowedBy(BUYER)).toBe(80);
  });

  it("stores a delivery whole, opens the review window, and settles the escrow once", async () => {
    const { task } = await accepted();
    const content = Buffer.from([0, 1, 2, 255, 254]);
    await expect(
      a.deliver(task.id, "worker-2", { filename: "f", content, sha256: "h", notes: null }, HOUR, T0 + 4),
    ).rejects.toBeInstanceOf(MarketForbiddenError);
    const t = await b.deliver(
      task.id,
      "worker-1",
      { filename: "f.bin", content, sha256: "h", notes: "n" },
      HOUR,
      T0 + 4,
    );
    expect(t).toMatchObject({ state: "delivered", delivered_at: T0 + 4, review_ends_at: T0 + 4 + HOUR });
    const d = await a.delivery(task.id);
    expect(d!.content.equals(content)).toBe(true);
    expect(d).toMatchObject({
      filename: "f.bin",
      size_bytes: 5,
      sha256: "h",
      notes: "n",
      worker_id: "worker-1",
    });
    expect(await a.deliveryMeta(task.id)).not.toHaveProperty("content");
    const paid = await a.transition(task.id, "confirm", { account: BUYER }, T0 + 5);
    expect(paid).toMatchObject({ state: "paid", escrow: "locked", closed_at: T0 + 5 });
    expect((await b.due(T0 + 6)).unsettled.map((x) => x.id)).toEqual([task.id]);
    await b.markSettled(task.id, T0 + 6);
    await a.markSettled(task.id, T0 + 7);
    expect(await a.task(task.id)).toMatchObject({ escrow: "settled", updated_at: T0 + 6 });
    expect((await b.due(T0 + 8)).unsettled).toEqual([]);
  });

  it("lists what the sweeper has to do", async () => {
    const expiring = await newTask(a, { deadlineAt: T0 + HOUR });
    const later = await newTask(a, { deadlineAt: T0 + 48 * HOUR });
    const review = await delivered(HOUR);
    const due = await b.due(T0 + 2 * HOUR);
    expect(due.expire).toEqual([expiring.id]);
    expect(due.release).toEqual([review]);
    expect(due.expire).not.toContain(later.id);
    const t = await b.transition(expiring.id, "expire", "system", T0 + 2 * HOUR);
    expect(t).toMatchObject({ state: "expired", closed_at: T0 + 2 * HOUR });
    await expect(a.transition(later.id, "expire", "system", T0 + 2 * HOUR)).rejects.toThrow(/has not passed/);
    const d = await a.transition(review, "dispute", { account: BUYER }, T0 + 30 * 60_000, "wrong file");
    expect(d).toMatchObject({ state: "disputed", dispute_reason: "wrong file" });
    expect((await b.due(T0 + 2 * HOUR)).release).toEqual([]);
  });

  it("keeps message threads in order and caps them", async () => {
    const t = await newTask(a);
    const q = await quote(a, t.id, "worker-1");
    const m1 = await a.addMessage(q.id, BUYER, "hello", T0 + 5);
    const m2 = await b.addMessage(q.id, "worker-1", "hi", T0 + 6);
    expect(m2.id).toBeGreaterThan(m1.id);
    expect(await a.messages(q.id)).toEqual([
      { id: m1.id, quote_id: q.id, author_id: BUYER, body: "hello", created_at: T0 + 5 },
      { id: m2.id, quote_id: q.id, author_id: "worker-1", body: "hi", created_at: T0 + 6 },
    ]);
  });

  it("journals collections and finishes each once", async () => {
    const c = {
      id: randomUUID(),
      account_id: "worker-1",
      mint: "http://mint",
      invoice: "lnbc1",
      quote: "q1",
      amount: 100,
      fee_reserve: 2,
      created_at: T0,
    };
    await a.addCollection(c);
    await a.addCollection({ ...c, id: "gone", created_at: T0 + 1 });
    await b.dropCollection("gone");
    expect(await a.collection("gone")).toBeUndefined();
    expect((await b.payingCollections()).map((x) => x.id)).toEqual([c.id]);
    expect(await b.finishCollection(c.id, "paid", { fee: 1, preimage: "ab" })).toBe(true);
    expect(await a.finishCollection(c.id, "failed", { error: "late" })).toBe(false);
    await a.dropCollection(c.id); // a finished collection is kept
    expect(await a.collection(c.id)).toMatchObject({
      state: "paid",
      fee: 1,
      preimage: "ab",
      error: null,
      amount: 100,
    });
    expect(await a.payingCollections()).toEqual([]);
    expect((await b.collectionsOf("worker-1", 5)).map((x) => x.id)).toEqual([c.id]);
  });

  // ---- races between two processes ----------------------------------------------------------------
  it("10 racing accepts of one quote from two processes: one wins, the rest get the conflict", async () => {
    const t = await newTask(a);
    const q = await quote(a, t.id, "worker-1");
    const { won, errors } = await race(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).beginAccept(t.id, q.id, BUYER, T0 + 2)),
    );
    expect(won).toHaveLength(1);
    expect(errors).toHaveLength(9);
    for (const e of errors) {
      expect(e).toBeInstanceOf(MarketConflictError);
      expect(e.message).toMatch(/cannot accept a quote: the task is accepted/);
    }
    expect(await a.escrowedBy(BUYER)).toBe(100);
  });

  it("racing accepts of two quotes of one task: one price is claimed", async () => {
    const t = await newTask(a);
    const q1 = await quote(a, t.id, "worker-1", 100);
    const q2 = await quote(a, t.id, "worker-2", 70, T0 + 2);
    const { won, errors } = await race([
      a.beginAccept(t.id, q1.id, BUYER, T0 + 3),
      b.beginAccept(t.id, q2.id, BUYER, T0 + 3),
      b.beginAccept(t.id, q1.id, BUYER, T0 + 3),
      a.beginAccept(t.id, q2.id, BUYER, T0 + 3),
    ]);
    expect(won).toHaveLength(1);
    expect(errors.every((e) => e instanceof MarketConflictError)).toBe(true);
    const states = (await b.quotesOf(t.id)).map((q) => q.state).sort();
    expect(states).toEqual(["accepted", "pending"]);
    expect((await b.task(t.id))!.price_sats).toBe(won[0]!.quote.price_sats);
  });

  it("the same transition raced by both processes happens once (confirm, expire)", async () => {
    const id = await delivered();
    const confirms = await race(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? a : b).transition(id, "confirm", { account: BUYER }, T0 + 5),
      ),
    );
    expect(confirms.won).toHaveLength(1);
    expect(
      confirms.errors.every((e) => e instanceof MarketConflictError && /the task is paid/.test(e.message)),
    ).toBe(true);
    const open = await newTask(a, { deadlineAt: T0 + HOUR });
    const expiries = await race(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 ? a : b).transition(open.id, "expire", "system", T0 + 2 * HOUR),
      ),
    );
    expect(expiries.won).toHaveLength(1);
    expect(expiries.errors.every((e) => e instanceof MarketConflictError)).toBe(true);
  });

  it("approve against dispute: either the approval wins and the dispute is refused, or both apply in order", async () => {
    // confirm is allowed from `disputed` too (it ends a dispute), so dispute → confirm is a legal
    // order; what must never happen is a dispute landing on a paid task.
    for (let i = 0; i < 4; i++) {
      const id = await delivered();
      const [confirm, dispute] = await Promise.allSettled([
        a.transition(id, "confirm", { account: BUYER }, T0 + 5),
        b.transition(id, "dispute", { account: BUYER }, T0 + 5, "no"),
      ]);
      expect(confirm.status).toBe("fulfilled");
      const t = (await a.task(id))!;
      expect(t.state).toBe("paid");
      if (dispute.status === "rejected") {
        expect(dispute.reason).toBeInstanceOf(MarketConflictError);
        expect(t.dispute_reason).toBeNull();
      } else expect(t.dispute_reason).toBe("no");
    }
  });

  it("mutually exclusive transitions raced across processes: exactly one applies", async () => {
    // The buyer disputes at the last moment while a sweeper releases at the window's end.
    const released = await delivered(HOUR);
    const r1 = await race([
      a.transition(released, "dispute", { account: BUYER }, T0 + 4 + HOUR - 1, "late"),
      b.transition(released, "auto_release", "system", T0 + 4 + HOUR),
    ]);
    expect(r1.won).toHaveLength(1);
    expect(r1.errors[0]).toBeInstanceOf(MarketConflictError);
    expect(["disputed", "paid"]).toContain((await a.task(released))!.state);
    // The buyer approves while the worker gives up.
    const both = await delivered();
    const r2 = await race([
      a.transition(both, "confirm", { account: BUYER }, T0 + 5),
      b.transition(both, "refund", { account: "worker-1" }, T0 + 5),
    ]);
    expect(r2.won).toHaveLength(1);
    expect(r2.errors[0]).toBeInstanceOf(MarketConflictError);
    expect(["paid", "cancelled"]).toContain((await b.task(both))!.state);
    // The worker delivers at the deadline's last moment while a sweeper expires the task.
    const { task } = await accepted();
    const r3 = await race([
      a.deliver(
        task.id,
        "worker-1",
        { filename: "f", content: Buffer.from("x"), sha256: "h", notes: null },
        HOUR,
        task.deadline_at - 1,
      ),
      b.transition(task.id, "expire", "system", task.deadline_at),
    ]);
    expect(r3.won).toHaveLength(1);
    const end = (await a.task(task.id))!;
    expect(["delivered", "expired"]).toContain(end.state);
    expect(end.state === "delivered").toBe((await a.delivery(task.id)) !== undefined);
  });

  it("racing quotes of one worker leave one quote", async () => {
    const t = await newTask(a);
    const { won, errors } = await race(
      Array.from({ length: 6 }, (_, i) => quote(i % 2 ? a : b, t.id, "worker-1", 100 + i)),
    );
    expect(won).toHaveLength(1);
    expect(errors.every((e) => e instanceof MarketConflictError)).toBe(true);
    expect(await a.quotesOf(t.id)).toHaveLength(1);
  });

  it("a collection raced to paid and failed by two processes is finished once", async () => {
    const id = randomUUID();
    await a.addCollection({
      id,
      account_id: "w",
      mint: "m",
      invoice: "i",
      quote: "q",
      amount: 5,
      fee_reserve: 1,
      created_at: T0,
    });
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).finishCollection(id, i % 3 ? "paid" : "failed", { fee: 0, error: "x" }),
      ),
    );
    expect(results.filter(Boolean)).toHaveLength(1);
  });

  it("a thread filled by two processes at once stops exactly at its cap", async () => {
    const t = await newTask(a);
    const q = await quote(a, t.id, "worker-1");
    for (let i = 0; i < MAX_THREAD_MESSAGES - 4; i++) await a.addMessage(q.id, BUYER, `m${i}`, T0 + 10);
    const { won, errors } = await race(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).addMessage(q.id, "worker-1", `r${i}`, T0 + 20)),
    );
    expect(won).toHaveLength(4);
    expect(errors.every((e) => e instanceof MarketConflictError && /thread is full/.test(e.message))).toBe(
      true,
    );
    expect(await b.messages(q.id)).toHaveLength(MAX_THREAD_MESSAGES);
  });
});
