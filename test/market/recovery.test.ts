/**
 * A crash between the market's store and the ledger is repaired on the next start: an accept that
 * locked the escrow is finished, one that never reached the ledger is undone, and a task that ended
 * before its escrow moved gets it moved (once). No mint needed: accounts are funded in the ledger.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { Accounts } from "../../gateway/ledger/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

const start = (dataDir: string) =>
  startGateway({
    dataDir,
    trustedMints: [],
    port: 0,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    market: { sweepIntervalMs: 0 },
  });

async function call(gw: RunningGateway, path: string, key: string, body?: unknown) {
  const res = await fetch(`${gw.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", "x-token": key },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await res.json()) as any;
}

/** A registered account holding `sats`, credited from promo (the books stay balanced). */
async function account(gw: RunningGateway, sats: number): Promise<{ key: string; id: string }> {
  const key = ((await (await fetch(`${gw.url}/v1/auth/register`, { method: "POST" })).json()) as any).api_key;
  const { account_id: id } = await call(gw, "/v1/market/me", key);
  await gw.gateway.ledger.transfer("test", `fund:${id}`, [
    { from: Accounts.promo, to: Accounts.user(id), msat: sats * 1000 },
  ]);
  return { key, id };
}

describe("restart after a crash between the market store and the ledger", () => {
  it("finishes or undoes interrupted accepts and moves escrow a finished task still holds", async () => {
    const dir = tempDir("owlrun-market-crash-");
    let gw = await start(dir);
    const buyer = await account(gw, 1000);
    const worker = await account(gw, 100);
    const quoted = async (title: string) => {
      const task = await call(gw, "/v1/market/tasks", buyer.key, { title, budget_sats: 100 });
      const quote = await call(gw, `/v1/market/tasks/${task.id}/quotes`, worker.key, { price_sats: 100 });
      return { task: task.id as string, quote: quote.id as string };
    };
    const locked = await quoted("locked, then crash");
    const unlocked = await quoted("claimed, never locked");
    const paid = await quoted("paid, escrow never moved");
    for (const c of [locked, paid])
      await call(gw, `/v1/market/tasks/${c.task}/quotes/${c.quote}/accept`, buyer.key, {});
    await gw.close();

    // What a crash at the wrong moment leaves behind, written straight into the market's file.
    const db = new Database(join(dir, "market.sqlite"));
    db.prepare("UPDATE tasks SET escrow = 'locking' WHERE id = ?").run(locked.task);
    db.prepare(
      "UPDATE tasks SET state = 'accepted', escrow = 'locking', quote_id = ?, worker_id = ?, price_sats = 100 WHERE id = ?",
    ).run(unlocked.quote, worker.id, unlocked.task);
    db.prepare("UPDATE quotes SET state = 'accepted' WHERE id = ?").run(unlocked.quote);
    db.prepare("UPDATE tasks SET state = 'paid' WHERE id = ?").run(paid.task);
    db.close();

    gw = await start(dir);
    try {
      const get = (id: string) => call(gw, `/v1/market/tasks/${id}`, buyer.key);
      expect(await get(locked.task)).toMatchObject({ state: "accepted", escrow: "locked", escrow_sats: 100 });
      const undone = await get(unlocked.task);
      expect(undone).toMatchObject({ state: "quoted", escrow: "none", accepted_quote_id: null });
      expect(undone.quotes[0].state).toBe("pending");
      // startGateway's recovery ran the sweeper: the paid task's escrow went to the worker, once.
      expect(await get(paid.task)).toMatchObject({ state: "paid", escrow: "released" });
      expect(await gw.gateway.ledger.balance(Accounts.escrow(paid.task))).toBe(0);
      await gw.gateway.market.sweep();
      // fees: 3 × 50 + 3 × 10; escrow: 100 locked, 100 released to the worker
      expect(await gw.gateway.ledger.balance(Accounts.user(buyer.id))).toBe((1000 - 150 - 200) * 1000);
      expect(await gw.gateway.ledger.balance(Accounts.user(worker.id))).toBe((100 - 30 + 100) * 1000);
      // The undone accept can be made again.
      const again = await call(
        gw,
        `/v1/market/tasks/${unlocked.task}/quotes/${unlocked.quote}/accept`,
        buyer.key,
        {},
      );
      expect(again).toMatchObject({ state: "accepted", escrow: "locked" });
      expect((await gw.gateway.ledger.audit()).imbalanceMsat).toBe(0);
    } finally {
      await gw.close();
    }
  });
});
