/**
 * Provider earnings above the threshold leave over Lightning (LNURL-pay + the mint's melt): the
 * provider pays the routing fee, the ledger stays balanced, and the ecash the books say the gateway
 * holds is what its wallet holds.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Accounts, Ledger } from "../../gateway/ledger/index.js";
import { ProviderPayouts } from "../../gateway/payments/payouts.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";
import "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { startFlakyProxy } from "../support/flaky-proxy.js";
import { type LnurlServer, startLnurlServer } from "../support/lnurl-server.js";

let mint: CliProcess;
let lnurl: LnurlServer;
beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  lnurl = await startLnurlServer();
});
afterAll(async () => {
  await mint.stop();
  await lnurl.close();
});

describe("provider payouts", () => {
  it("pays balances over the threshold to the Lightning address, once", async () => {
    const dir = tempDir();
    const ledger = Ledger.open(dir);
    const wallet = await GatewayWallet.open(dir, [mint.url], silentLogger);
    // The gateway holds 5000 sats of ecash, 1500 of which it owes provider n1 and 600 provider n2.
    const q = await wallet.createMintQuote(mint.url, 5000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await wallet.mintPaid(mint.url, q.quote, 5000)).toBe(true);
    await ledger.transfer("test", "fund", [
      { from: Accounts.ecash(mint.url), to: Accounts.provider("n1"), msat: 1_500_000 },
      { from: Accounts.ecash(mint.url), to: Accounts.provider("n2"), msat: 600_000 },
      { from: Accounts.ecash(mint.url), to: Accounts.fees, msat: 2_900_000 },
    ]);
    const payouts = new ProviderPayouts(`${dir}/payouts.sqlite`, ledger, wallet, {
      addressOf: async (node) => lnurl.address(node),
      mint: () => mint.url,
      lnurl: { allowLoopbackHttp: true },
      log: silentLogger,
    });

    const done = await payouts.runOnce();
    expect(done.map((p) => [p.node_id, p.state])).toEqual([["n1", "paid"]]); // n2 is under 1000 sats
    const paid = done[0]!;
    expect(lnurl.requests).toContain(paid.amount * 1000);
    expect(paid.amount + paid.fee!).toBeLessThanOrEqual(1500);
    expect(await ledger.balance(Accounts.provider("n1"))).toBe((1500 - paid.amount - paid.fee!) * 1000);
    expect(await ledger.balance(Accounts.provider("n2"))).toBe(600_000);

    // Nothing left over the threshold: a second run pays nothing.
    expect(await payouts.runOnce()).toEqual([]);
    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await wallet.balance(mint.url)) * 1000);
    payouts.close();
    await wallet.close();
    await ledger.close();
  });

  it("a melt whose answer is lost stays open until the mint says it was paid: never paid twice", async () => {
    const dir = tempDir();
    const proxy = await startFlakyProxy(mint.url);
    const ledger = Ledger.open(dir);
    const wallet = await GatewayWallet.open(dir, [proxy.url], silentLogger);
    const q = await wallet.createMintQuote(proxy.url, 3000);
    await new Promise((r) => setTimeout(r, 100));
    expect(await wallet.mintPaid(proxy.url, q.quote, 3000)).toBe(true);
    await ledger.transfer("test", "fund", [
      { from: Accounts.ecash(proxy.url), to: Accounts.provider("n3"), msat: 1_200_000 },
      { from: Accounts.ecash(proxy.url), to: Accounts.fees, msat: 1_800_000 },
    ]);
    const payouts = new ProviderPayouts(`${dir}/payouts.sqlite`, ledger, wallet, {
      addressOf: async (node) => lnurl.address(node),
      mint: () => proxy.url,
      lnurl: { allowLoopbackHttp: true },
      log: silentLogger,
    });
    const invoicesBefore = lnurl.requests.length;

    // The mint pays the invoice, but its answer never reaches the gateway: the gateway asks the
    // mint about the quote instead of giving the money back (which would pay the provider twice).
    proxy.dropAnswers.set("/v1/melt/bolt11", 1);
    const [first] = await payouts.runOnce();
    expect(proxy.dropAnswers.get("/v1/melt/bolt11")).toBe(0);
    expect(first!.state).toBe("paid");
    expect(first!.preimage).toMatch(/^[0-9a-f]{64}$/);
    expect(await ledger.balance(Accounts.provider("n3"))).toBe((1200 - first!.amount - first!.fee!) * 1000);
    // Nothing is owed any more: the next run pays nothing, and one invoice was ever asked for.
    expect(await payouts.runOnce()).toEqual([]);
    expect(await payouts.history("n3")).toHaveLength(1);
    expect(lnurl.requests.length - invoicesBefore).toBe(1);

    // The books charged the fee the mint kept (inputs − amount − signed change: the fake node's
    // 1 sat), not the whole reserve. The wallet gets the change proofs back at its next recovery
    // (as after a restart) and then holds exactly what the books say.
    expect(first!.fee).toBe(1);
    await wallet.recover();
    expect((await ledger.audit()).ecashMsat).toBe((await wallet.balance(proxy.url)) * 1000);

    // Lost again, and now the mint cannot be asked either: the payout stays open, its money set
    // aside — never handed back to the provider (that melt may have been paid).
    await ledger.transfer("test", "more", [
      { from: Accounts.fees, to: Accounts.provider("n3"), msat: 1_200_000 },
    ]);
    proxy.dropAnswers.set("/v1/melt/bolt11", 1);
    // Unreachable for the wallet's NUT-19 retry of the melt too, not only for quote checks.
    proxy.onDrop = () => {
      proxy.refuse.add("/v1/melt/quote/bolt11/*");
      proxy.refuse.add("/v1/melt/bolt11");
    };
    expect(await payouts.runOnce()).toEqual([expect.objectContaining({ state: "paying" })]);
    const reserved = await ledger.balance(Accounts.provider("n3"));
    expect(await payouts.runOnce()).toEqual([]); // still open: asked again, nothing paid twice
    expect(await ledger.balance(Accounts.provider("n3"))).toBe(reserved);
    // The wallet's recovery (as after a restart) settles the melt's inputs and restores its
    // change; once the mint answers again the payout completes with the fee it really cost.
    await wallet.recover();
    proxy.refuse.clear();
    await payouts.recover();
    const second = (await payouts.history("n3"))[0]!;
    expect(second).toMatchObject({ state: "paid", fee: 1 });
    expect(await ledger.balance(Accounts.provider("n3"))).toBe(reserved + (second.fee_reserve - 1) * 1000);
    expect(lnurl.requests.length - invoicesBefore).toBe(2);

    const audit = await ledger.audit();
    expect(audit.imbalanceMsat).toBe(0);
    expect(audit.ecashMsat).toBe((await wallet.balance(proxy.url)) * 1000);
    payouts.close();
    await wallet.close();
    await ledger.close();
    await proxy.close();
  });
});
