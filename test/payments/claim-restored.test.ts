/**
 * Claims whose swap answer was lost and whose outputs were restored from the seed (NUT-09), then a
 * crash before the ledger credited them, on SQLite and PostgreSQL, with a real mint behind a proxy
 * that drops the swap's answer:
 * - restored on the spot by `receive` (the request's own process): the pool step records the claim
 *   as not yet credited, like the answered path, so the restart credits it (was lost: proofs in the
 *   pool, no ledger entry, no change);
 * - one claim op over several counter ranges restored at a restart: the whole amount is credited,
 *   once (was: only the first range's), also when the restart could restore only some of them;
 * - PostgreSQL: a live process's restored claim is left to it by another process's restart.
 * And the Lightning top-up, which needs no record: a crash after its ecash was minted into the pool
 * and before the ledger credit is repaired by the next check of the top-up (the mint reports the
 * quote ISSUED; the deposit is keyed by the quote), once.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken, type Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimOp } from "../../gateway/payments/claims.js";
import { EcashError, inspectToken } from "../../src/shared/ecash/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FlakyProxy, startFlakyProxy } from "../support/flaky-proxy.js";
import { readGatewayBooks } from "../support/money.js";
import { Restarts, type StartedGateway } from "../support/restarts.js";
import { testDatabase } from "../support/postgres.js";

let mint: CliProcess;
let proxy: FlakyProxy;
let client: Wallet;
const databases: { url: string; drop(): Promise<void> }[] = [];
const restarts = new Restarts();

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  proxy = await startFlakyProxy(mint.url);
  client = await newWallet(proxy.url);
});
afterAll(async () => {
  await restarts.closeAll();
  await proxy?.close();
  await mint?.stop();
  for (const db of databases) await db.drop();
});

const tokenOf = async (sats: number) =>
  inspectToken(getEncodedToken({ mint: proxy.url, proofs: await mintProofs(client, sats) }));

/**
 * The next swap's answer is lost and the mint stays unreachable for swaps (cashu-ts would otherwise
 * get the mint's cached answer on its retry); `restore: false` makes NUT-09 unreachable too.
 */
function loseNextSwapAnswer({ restore }: { restore: boolean }) {
  proxy.dropAnswers.set("/v1/swap", 1);
  proxy.onDrop = () => proxy.refuse.add("/v1/swap");
  if (!restore) proxy.refuse.add("/v1/restore");
}
function mintReachable() {
  proxy.onDrop = undefined;
  proxy.refuse.clear();
  proxy.dropAnswers.clear();
  proxy.passFirst.clear();
}

describe.each(["sqlite", "postgres"] as const)("on %s", (kind) => {
  /** One gateway's storage (a data dir, and a database on PostgreSQL) that restarts reopen. */
  const storage = async () => {
    const dataDir = join(tempDir("owlrun-claim-restored-"), "gateway");
    const db = kind === "postgres" ? await testDatabase("claimrestored") : undefined;
    if (db) databases.push(db);
    /** Each start opens its own database pool, as a restarted process would. */
    const gateway = () => restarts.start({ dataDir, trustedMints: [proxy.url] }, db?.url);
    const books = () => readGatewayBooks(db ? { databaseUrl: db.url } : dataDir, proxy.url);
    return { gateway, books };
  };
  const stop = (g: StartedGateway) => g.stop();

  it("X-Cashu: a claim restored on the spot, then a crash before its hold was funded, comes back as change", async () => {
    const { gateway, books } = await storage();
    const first = await gateway();
    const token = await tokenOf(20);
    const holdId = randomUUID();
    await first.gw.gateway.ledger.reserveCashuHold(holdId, proxy.url, "B", "chat test");
    loseNextSwapAnswer({ restore: true });
    const claimed = await first.gw.gateway.wallet
      .claim(token, claimOp.xcashu("B", holdId))
      .finally(mintReachable);
    expect(claimed.amountSat).toBe(20); // found at the mint (NUT-09), not swapped again
    // …and the process dies before `fundCashuHold`.
    await stop(first);

    const second = await gateway();
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    const change = await second.gw.gateway.wallet.change(holdId);
    expect(change?.amount).toBe(20);
    await stop(second);
    // A later start credits nothing more: the change is owed once.
    const third = await gateway();
    const again = await books();
    expect(again.ecashMsat).toBe(again.poolSat * 1000);
    expect((await third.gw.gateway.wallet.change(holdId))?.token).toBe(change?.token);
    await stop(third);
  });

  it("a deposit restored on the spot, then a crash before the ledger credited it, reaches the account", async () => {
    const { gateway, books } = await storage();
    const first = await gateway();
    const token = await tokenOf(25);
    const accountId = randomUUID();
    loseNextSwapAnswer({ restore: true });
    await first.gw.gateway.wallet.claim(token, claimOp.user(accountId)).finally(mintReachable);
    await stop(first);

    const second = await gateway();
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    expect(after.balances.get(`user:${accountId}`)).toBe(25_000);
    await stop(second);
  });

  it("one claim op over two counter ranges restored at a restart is credited in full, once", async () => {
    const { gateway, books } = await storage();
    const first = await gateway();
    const accountId = randomUUID();
    const op = claimOp.user(accountId);
    // Two swaps under one op, each answer lost and the mint unreachable until the restart: two
    // open counter ranges name the op.
    for (const sats of [20, 25]) {
      const token = await tokenOf(sats);
      loseNextSwapAnswer({ restore: false });
      const err = await first.gw.gateway.wallet.claim(token, op).catch((e: unknown) => e);
      mintReachable();
      expect((err as EcashError).type).toBe("mint_unavailable");
    }
    await stop(first);

    const second = await gateway();
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    expect(after.balances.get(`user:${accountId}`)).toBe(45_000);
    await stop(second);
    await gateway();
    const again = await books();
    expect(again.ecashMsat).toBe(again.poolSat * 1000);
    expect(again.balances.get(`user:${accountId}`)).toBe(45_000);
  });

  it("a restart that restores only some of a claim's ranges credits it in full at a later start", async () => {
    const { gateway, books } = await storage();
    const first = await gateway();
    const accountId = randomUUID();
    const op = claimOp.user(accountId);
    for (const sats of [20, 25]) {
      const token = await tokenOf(sats);
      loseNextSwapAnswer({ restore: false });
      await first.gw.gateway.wallet.claim(token, op).catch(() => undefined);
      mintReachable();
    }
    await stop(first);

    // The first range is restored, the second restore's answer is lost.
    proxy.passFirst.set("/v1/restore", 1);
    proxy.dropAnswers.set("/v1/restore", 1);
    const second = await gateway();
    expect(proxy.dropAnswers.get("/v1/restore")).toBe(0); // the second range's answer was lost
    mintReachable();
    // Not credited with the first range alone (a credit is once per op: the rest would be lost).
    expect((await books()).balances.get(`user:${accountId}`) ?? 0).toBe(0);
    await stop(second);
    for (let start = 0; start < 2; start++) {
      await stop(await gateway());
      const after = await books();
      expect(after.ecashMsat).toBe(after.poolSat * 1000);
      expect(after.balances.get(`user:${accountId}`)).toBe(45_000);
    }
  });

  it("a Lightning top-up minted into the pool before the ledger credited it reaches the account, once", async () => {
    const { gateway, books } = await storage();
    const first = await gateway();
    const post = (path: string, body: unknown, key?: string) =>
      fetch(`${first.gw.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<Record<string, unknown>>);
    const { api_key: key } = (await post("/v1/auth/register", {})) as { api_key: string };
    const { quote } = (await post("/v1/auth/topup", { amount_sats: 40 }, key)) as { quote: string };
    // What the top-up check does up to the crash: the paid quote's ecash is minted into the pool…
    for (let i = 0; !(await first.gw.gateway.wallet.mintPaid(proxy.url, quote, 40)); i++) {
      expect(i).toBeLessThan(100); // the test mint's Lightning pays by itself within moments
      await new Promise((r) => setTimeout(r, 50));
    }
    // …and the process dies before `ledger.deposit`.
    await stop(first);

    for (let start = 0; start < 2; start++) {
      const next = await gateway();
      const res = await fetch(`${next.gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
      expect(((await res.json()) as { balance_sats: number }).balance_sats).toBe(40);
      const after = await books();
      expect(after.ecashMsat).toBe(after.poolSat * 1000);
      await stop(next);
    }
  });

  it.runIf(kind === "postgres")(
    "a restart next to a live process leaves that process's restored claim to it",
    async () => {
      const { gateway, books } = await storage();
      const live = await gateway();
      const token = await tokenOf(30);
      const holdId = randomUUID();
      const { ledger, wallet } = live.gw.gateway;
      await ledger.reserveCashuHold(holdId, proxy.url, "B", "chat test");
      loseNextSwapAnswer({ restore: true });
      const claimed = await wallet.claim(token, claimOp.xcashu("B", holdId)).finally(mintReachable);
      // Another process starts while the claim is between the pool and the ledger: it must not
      // fund the hold (and pay it back as change) under the live request.
      const other = await gateway();
      expect(await ledger.holdFunded(holdId)).toBe(false);
      expect(await ledger.fundCashuHold(holdId, claimed.mint, claimed.amountSat * 1000)).toBe("funded");
      await wallet.claimFunded(claimOp.xcashu("B", holdId));
      expect(await other.gw.gateway.wallet.change(holdId)).toBeUndefined();
      const after = await books();
      expect(after.ecashMsat).toBe(after.poolSat * 1000);
      expect(after.balances.get(`hold:${holdId}`)).toBe(30_000);
      await stop(other);
      await stop(live);
    },
  );
});
