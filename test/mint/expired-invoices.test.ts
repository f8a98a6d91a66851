/**
 * Invoices that expired long ago: the fake backend pays any well-formed invoice whatever its expiry
 * (as CDK's and nutshell's fake wallets do, so wallet test suites with fixed invoices run unchanged);
 * a mint on a real node (phoenixd) keeps refusing them before any proof is locked.
 */
import { randomBytes } from "node:crypto";
import bolt11 from "bolt11";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FakePhoenixd, startFakePhoenixd } from "../support/fake-phoenixd.js";

/** A signed mainnet invoice created `ageSeconds` ago that expired after 600 s. */
function oldInvoice(amountSat: number, ageSeconds: number): string {
  const encoded = bolt11.encode({
    network: { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] },
    satoshis: amountSat,
    timestamp: Math.floor(Date.now() / 1000) - ageSeconds,
    tags: [
      { tagName: "payment_hash", data: randomBytes(32).toString("hex") },
      { tagName: "payment_secret", data: randomBytes(32).toString("hex") },
      { tagName: "description", data: "expired long ago" },
      { tagName: "expire_time", data: 600 },
    ],
  });
  return bolt11.sign(encoded, randomBytes(32).toString("hex")).paymentRequest!;
}

describe("fake Lightning: expired invoices are paid", () => {
  let mint: CliProcess;
  beforeAll(async () => {
    mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "50"]);
  });
  afterAll(async () => {
    expect(await mint.stop()).toBe(0);
  });

  it("quotes and melts invoices that expired a day and four years ago", async () => {
    const wallet = await newWallet(mint.url);
    for (const invoice of [oldInvoice(20, 86_400), oldInvoice(1500, 4 * 365 * 86_400)]) {
      const quote = await wallet.createMeltQuoteBolt11(invoice);
      const amount = quote.amount.toNumber();
      const proofs = await mintProofs(wallet, amount + quote.fee_reserve.toNumber() + 4);
      const res = await wallet.meltProofsBolt11(quote, proofs);
      expect(res.quote.state).toBe("PAID");
      expect(sumAmounts(res.change)).toBeGreaterThan(0);
    }
  });
});

describe("phoenixd: expired invoices are still refused", () => {
  let phoenix: FakePhoenixd;
  let mint: CliProcess;
  beforeAll(async () => {
    phoenix = await startFakePhoenixd("hunter2");
    mint = await startCli([
      "mint",
      "--port",
      "0",
      "--data-dir",
      tempDir(),
      "--lightning",
      "phoenixd",
      "--phoenixd-url",
      phoenix.url,
      "--phoenixd-password",
      "hunter2",
    ]);
  });
  afterAll(async () => {
    expect(await mint.stop()).toBe(0);
    await phoenix.close();
  });

  it("answers 400 'expired' to a melt quote for an expired invoice", async () => {
    const res = await fetch(`${mint.url}/v1/melt/quote/bolt11`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ request: oldInvoice(20, 86_400), unit: "sat" }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/expired/i);
  });
});
