/**
 * A crash after the claim's swap stored the new proofs in the gateway's pool (which resolves the
 * swap's counter range in the same step) and before the ledger funded the request's reserved hold
 * (found by the kill -9 soak over three gateway processes, test/long/cluster-soak.test.ts). The
 * pool step also records the claim as not yet credited; the restart credits that record to the
 * hold and refunds it as change under the request id, once, on SQLite and on PostgreSQL. A hold
 * funded normally whose record outlived it (a crash before the record was dropped) is not funded again.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { getEncodedToken } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimOp } from "../../gateway/payments/claims.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { readGatewayBooks } from "../support/money.js";
import { Restarts, type StartedGateway } from "../support/restarts.js";
import { testDatabase } from "../support/postgres.js";

let mint: CliProcess;
let db: { url: string; drop(): Promise<void> };
const restarts = new Restarts();

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  db = await testDatabase("claimunfunded");
});
afterAll(async () => {
  await restarts.closeAll();
  await mint?.stop();
  await db?.drop();
});

describe.each(["sqlite", "postgres"] as const)("on %s", (kind) => {
  const dataDir = join(tempDir("owlrun-claim-unfunded-"), "gateway");
  /** Each start opens its own database pool, as a restarted process would. */
  const gateway = () =>
    restarts.start({ dataDir, trustedMints: [mint.url] }, kind === "postgres" ? db.url : undefined);
  const stop = (g: StartedGateway) => g.stop();
  const books = () => readGatewayBooks(kind === "postgres" ? { databaseUrl: db.url } : dataDir, mint.url);

  it("a token claimed into the pool before its hold was funded comes back as change after a restart", async () => {
    const first = await gateway();
    const client = await newWallet(mint.url);
    const token = getEncodedToken({ mint: mint.url, proofs: await mintProofs(client, 20) });
    const holdId = randomUUID();
    // What CashuPayments.open does up to the crash: the id reserved, the token swapped into the pool…
    await first.gw.gateway.ledger.reserveCashuHold(holdId, mint.url, "B", "chat test");
    await first.gw.gateway.wallet.claim(inspectToken(token), claimOp.xcashu("B", holdId));
    // …and the process dies before `fundCashuHold`.
    await stop(first);

    const second = await gateway();
    const change = await second.gw.gateway.wallet.change(holdId);
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    expect(change?.amount).toBe(20);
    // A later start finds nothing left to credit: the change is owed once.
    await stop(second);
    const third = await gateway();
    const again = await books();
    expect(again.ecashMsat).toBe(again.poolSat * 1000);
    expect((await third.gw.gateway.wallet.change(holdId))?.token).toBe(change?.token);
    await stop(third);
  });

  it("a deposit claimed into the pool before the ledger credited it reaches the account after a restart", async () => {
    const first = await gateway();
    const client = await newWallet(mint.url);
    const token = getEncodedToken({ mint: mint.url, proofs: await mintProofs(client, 25) });
    const accountId = randomUUID();
    await first.gw.gateway.wallet.claim(inspectToken(token), claimOp.user(accountId));
    // …and the process dies before `ledger.deposit`.
    await stop(first);

    await gateway();
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    expect(after.balances.get(`user:${accountId}`)).toBe(25_000);
  });

  it("a hold funded normally is not funded again when the claim's record outlived the funding", async () => {
    const first = await gateway();
    const client = await newWallet(mint.url);
    const token = getEncodedToken({ mint: mint.url, proofs: await mintProofs(client, 30) });
    const holdId = randomUUID();
    const { ledger, wallet } = first.gw.gateway;
    await ledger.reserveCashuHold(holdId, mint.url, "B", "chat test");
    const claimed = await wallet.claim(inspectToken(token), claimOp.xcashu("B", holdId));
    expect(await ledger.fundCashuHold(holdId, claimed.mint, claimed.amountSat * 1000)).toBe("funded");
    // …and the process dies before `claimFunded`. The hold is still active (SQLite refunds it at
    // start; with a shared database the stale-hold sweep does later): either way it holds 30, once.
    await stop(first);

    const second = await gateway();
    const after = await books();
    expect(after.ecashMsat).toBe(after.poolSat * 1000);
    const owed = (after.balances.get(`hold:${holdId}`) ?? 0) + (after.balances.get(`change:${holdId}`) ?? 0);
    const paid = (await second.gw.gateway.wallet.change(holdId))?.amount ?? 0;
    expect(owed + paid * 1000).toBe(30_000);
    await stop(second);
  });
});
