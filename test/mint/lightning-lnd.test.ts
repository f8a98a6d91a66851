/**
 * The LND REST backend against a local server that speaks LND's REST API: macaroon auth, invoices
 * that decode to the amount, payments whose preimage is LND's, failures, an answer lost after LND
 * paid (UNKNOWN, then settled by paymentState), a payment in flight across a node restart. Then the
 * mint on it: a melt whose answer is lost stays PENDING and is settled once LND answers, after a
 * restart of the mint too; LND is asked to pay once.
 */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLndLightning, type LightningBackend, startMintServer } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { externalInvoice } from "../support/blinded.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type FakeLnd, startFakeLnd } from "../support/fake-lnd.js";

const sha256 = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");
const hashOf = (invoice: string) => bolt11.decode(invoice).tagsObject.payment_hash!;

let lnd: FakeLnd;
let ln: LightningBackend;
beforeEach(async () => {
  lnd = await startFakeLnd();
  ln = createLndLightning({ url: lnd.url, macaroon: lnd.macaroon });
});
afterEach(async () => {
  await ln.close();
  await lnd.close();
});

describe("LND REST backend", () => {
  it("creates invoices for the amount, sees them paid, and knows their preimage", async () => {
    const inv = await ln.createInvoice(1337, "coffee", 600);
    const d = bolt11.decode(inv.request);
    expect(Number(d.millisatoshis)).toBe(1_337_000);
    expect(d.tagsObject.payment_hash).toBe(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    lnd.settle(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("PAID");
    expect(sha256((await ln.invoicePreimage!(inv))!)).toBe(inv.paymentHash);
  });

  it("refuses a wrong macaroon with a clear error", async () => {
    const bad = createLndLightning({ url: lnd.url, macaroon: "00" });
    await expect(bad.createInvoice(1, "x", 60)).rejects.toThrow(/lnd addinvoice: HTTP 401/);
  });

  it("pays: PAID with LND's preimage and fee; a second payment of the invoice is refused, not sent twice", async () => {
    const invoice = externalInvoice(20);
    const paid = await ln.payInvoice(invoice, 20_000, 5);
    expect(paid).toMatchObject({ state: "PAID", feeSat: 1 });
    expect(paid.preimage).toBe(lnd.payments.get(hashOf(invoice))!.payment_preimage);
    const again = await ln.payInvoice(invoice, 20_000, 5);
    expect(again.state).toBe("FAILED");
    expect(again.reason).toMatch(/already paid/);
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({ state: "PAID" });
  });

  it("a failed payment is FAILED with LND's reason", async () => {
    lnd.failNext = "FAILURE_REASON_NO_ROUTE";
    const r = await ln.payInvoice(externalInvoice(20), 20_000, 5);
    expect(r).toEqual({ state: "FAILED", reason: "FAILURE_REASON_NO_ROUTE" });
  });

  it("an answer lost after LND paid is UNKNOWN; paymentState then says PAID", async () => {
    const invoice = externalInvoice(20);
    lnd.loseAnswerNext = true;
    expect((await ln.payInvoice(invoice, 20_000, 5)).state).toBe("UNKNOWN");
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({ state: "PAID", feeSat: 1 });
  });

  it("in flight across a node restart: PENDING (the track stream is read without waiting), then the end", async () => {
    const invoice = externalInvoice(20);
    lnd.hangNext = true;
    expect((await ln.payInvoice(invoice, 20_000, 5)).state).toBe("UNKNOWN");
    expect(await ln.paymentState(hashOf(invoice))).toEqual({ state: "PENDING" });
    lnd.finish(hashOf(invoice), "FAILED");
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({ state: "FAILED" });
    // A payment LND never saw never left.
    const fresh = createLndLightning({ url: lnd.url, macaroon: lnd.macaroon });
    expect(await fresh.paymentState("ab".repeat(32))).toMatchObject({ state: "FAILED" });
  });
});

describe("the mint on LND", () => {
  it("a melt whose answer is lost stays PENDING, survives a mint restart, and settles once LND answers", async () => {
    const dir = tempDir();
    const start = () =>
      startMintServer({
        dataDir: dir,
        port: 0,
        lightning: createLndLightning({ url: lnd.url, macaroon: lnd.macaroon }),
        log: silentLogger,
      });
    let mint = await start();
    const wallet = await newWallet(mint.url);
    const q = await wallet.createMintQuoteBolt11(100);
    lnd.settle(hashOf(q.request));
    const proofs = await wallet.mintProofsBolt11(100, q.quote);
    expect(sumAmounts(proofs)).toBe(100);

    const invoice = externalInvoice(50);
    const quote = await wallet.createMeltQuoteBolt11(invoice);
    lnd.hangNext = true;
    const melt = await wallet.meltProofsBolt11(quote, proofs);
    expect(melt.quote.state).toBe("PENDING");
    const states = await wallet.checkProofsStates(proofs);
    expect(new Set(states.map((s) => s.state))).toEqual(new Set(["PENDING"]));

    await mint.close();
    lnd.finish(hashOf(invoice), "SUCCEEDED");
    mint = await start(); // recovery at start asks LND
    const w2 = await newWallet(mint.url);
    const after = await w2.checkMeltQuoteBolt11(quote.quote);
    expect(after.state).toBe("PAID");
    expect(after.payment_preimage).toBe(lnd.payments.get(hashOf(invoice))!.payment_preimage);
    expect(new Set((await w2.checkProofsStates(proofs)).map((s) => s.state))).toEqual(new Set(["SPENT"]));
    expect(lnd.sends).toBe(1);
    await mint.close();
  });
});
