/**
 * Withdrawals as ecash are crash-safe and retryable: the debit and the debt of a token are one
 * ledger write under the withdrawal id, so a crash before the token is made leaves it owed (the
 * restart, or the next fetch, makes it); the same id answers the same token, never a second payout.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Accounts, Ledger } from "../../gateway/ledger/index.js";
import { collectChange, recoverAfterRestart, takeRecoverySnapshot } from "../../gateway/payments/recovery.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
});
afterAll(async () => {
  await mint.stop();
});

/** A gateway's books and wallet holding `sats` of ecash, all of it owed to user:u1. */
async function fundedGateway(dir: string, sats: number) {
  const ledger = Ledger.open(dir);
  const wallet = await GatewayWallet.open(dir, [mint.url], silentLogger);
  const q = await wallet.createMintQuote(mint.url, sats);
  await new Promise((r) => setTimeout(r, 100));
  expect(await wallet.mintPaid(mint.url, q.quote, sats)).toBe(true);
  await ledger.transfer("test", "fund", [
    { from: Accounts.ecash(mint.url), to: Accounts.user("u1"), msat: sats * 1000 },
  ]);
  return { ledger, wallet };
}

async function redeem(token: string): Promise<number> {
  const client = await newWallet(mint.url);
  return sumAmounts(await client.receive(token));
}

describe("withdrawals as ecash", () => {
  it("a crash between the debit and the token leaves it owed; the restart makes it, exactly once", async () => {
    const dir = tempDir();
    let { ledger, wallet } = await fundedGateway(dir, 500);
    const id = randomUUID();
    await ledger.withdrawAsChange(id, Accounts.user("u1"), 200_000, mint.url);
    // … killed here: no token was made. Nor can the account overdraw meanwhile.
    await expect(
      ledger.withdrawAsChange(randomUUID(), Accounts.user("u1"), 400_000, mint.url),
    ).rejects.toThrow(/insufficient/i);
    await wallet.close();
    await ledger.close();

    ({ ledger, wallet } = {
      ledger: Ledger.open(dir),
      wallet: await GatewayWallet.open(dir, [mint.url], silentLogger),
    });
    const report = await recoverAfterRestart(
      await takeRecoverySnapshot(ledger),
      ledger,
      wallet,
      silentLogger,
    );
    expect(report.changeTokensMade).toBe(1);
    const made = (await wallet.change(id))!;
    expect(made.amount).toBe(200);
    // Fetching it again (the client retrying) answers the same token; nothing more is owed.
    expect(await collectChange(ledger, wallet, id)).toEqual(made);
    expect(await ledger.balance(Accounts.change(id))).toBe(0);
    expect(await ledger.balance(Accounts.user("u1"))).toBe(300_000);
    expect(await redeem(made.token)).toBe(200);

    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await wallet.balance(mint.url)) * 1000);
    await wallet.close();
    await ledger.close();
  });

  it("owed change is made on the first fetch; concurrent fetches make one token", async () => {
    const dir = tempDir();
    const { ledger, wallet } = await fundedGateway(dir, 300);
    const id = randomUUID();
    await ledger.withdrawAsChange(id, Accounts.user("u1"), 120_000, mint.url);
    const fetched = await Promise.all([1, 2, 3].map(() => collectChange(ledger, wallet, id)));
    expect(new Set(fetched.map((f) => f!.token)).size).toBe(1);
    expect(fetched[0]!.amount).toBe(120);
    expect(await collectChange(ledger, wallet, randomUUID())).toBeUndefined();
    expect(await redeem(fetched[0]!.token)).toBe(120);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await wallet.balance(mint.url)) * 1000);
    await wallet.close();
    await ledger.close();
  });
});
