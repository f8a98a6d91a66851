/**
 * An X-Cashu hold ended by someone else while its request was still being served — the stale-hold
 * sweep or a restart's recovery of another gateway process refunding it in full (found by the
 * kill -9 soak over three processes, test/long/cluster-soak.test.ts) — must not be settled again
 * with the request's own idea of the change: the refund stands, the client gets the one change
 * token made for the id (all of its money), and the ledger's ecash stays exactly the wallet's proofs.
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { Accounts } from "../../gateway/ledger/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { refundHold } from "../../gateway/payments/recovery.js";
import { CashuPayments, payOutChange } from "../../gateway/payments/xcashu.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { expectBooksClosed, readGatewayBooks } from "../support/money.js";

let dir: string;
let gw: RunningGateway;
let mintUrl: string;

beforeAll(async () => {
  dir = tempDir("owlrun-ended-hold-");
  gw = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    port: 0,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
  });
  mintUrl = `${gw.url}/mint`;
});
afterAll(async () => {
  await gw?.close();
});

/** A 50-sat X-Cashu payment, claimed and held like a request's. */
async function openPayment() {
  const client = await newWallet(mintUrl);
  const token = getEncodedToken({ mint: mintUrl, proofs: await mintProofs(client, 50) });
  const payments = new CashuPayments(gw.gateway.wallet, gw.gateway.ledger, silentLogger);
  return { client, payment: await payments.open(payments.inspect(token), "chat test") };
}

async function expectClosed() {
  const books = await readGatewayBooks(join(dir, "gateway"), mintUrl);
  expectBooksClosed(books, JSON.stringify(Object.fromEntries(books.balances)));
}

describe("an X-Cashu hold refunded elsewhere while its request is served", () => {
  it("refunded and paid out first: the request settles nothing and hands back the whole refund", async () => {
    const { client, payment } = await openPayment();
    const hold = (await gw.gateway.ledger.getHold(payment.holdId))!;
    expect(await refundHold(hold, gw.gateway.ledger, gw.gateway.wallet, silentLogger, "swept")).toBe(true);

    const settled = await payment.settle(10, "node-1", 95, "chat test");
    expect(settled.chargedSat).toBe(0);
    expect(settled.changeSat).toBe(50);
    expect(sumAmounts(await client.receive(settled.changeToken!))).toBe(50);
    expect(await gw.gateway.ledger.balance(Accounts.fees)).toBe(0);
    await expectClosed();
  });

  it("refunded but not yet paid out: both sides make the same change, and nothing stays owed", async () => {
    const { client, payment } = await openPayment();
    const ledger = gw.gateway.ledger;
    // The refunder's first step (the hold ends, all of it owed as change) …
    expect(await ledger.releaseHold(payment.holdId, Accounts.change(payment.holdId), "swept")).toBe(true);
    // … then the request settles, then the refunder pays the change it owes.
    const settled = await payment.settle(10, "node-1", 95, "chat test");
    const refunderToken = await payOutChange(ledger, gw.gateway.wallet, payment.holdId, mintUrl, 50, "B");
    expect(settled.chargedSat).toBe(0);
    expect(settled.changeToken).toBe(refunderToken);
    expect(sumAmounts(await client.receive(settled.changeToken!))).toBe(50);
    expect(await ledger.balance(Accounts.change(payment.holdId))).toBe(0);
    await expectClosed();
  });
});
