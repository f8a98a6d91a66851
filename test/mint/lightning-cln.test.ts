/**
 * The Core Lightning (clnrest) backend against a local server that speaks clnrest: rune auth,
 * invoices, payments whose preimage is CLN's, a failed `pay`, an answer lost after CLN paid
 * (UNKNOWN, then settled by listpays), a payment pending across a node restart, and CLN's `pay`
 * that answers an already paid invoice with the old result (refused here: never counted twice).
 * Then the mint on it: a lost melt answer stays PENDING and settles after a mint restart.
 */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createClnLightning, type LightningBackend, startMintServer } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { externalInvoice } from "../support/blinded.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { type FakeClnrest, startFakeClnrest } from "../support/fake-clnrest.js";

const sha256 = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");
const hashOf = (invoice: string) => bolt11.decode(invoice).tagsObject.payment_hash!;

let cln: FakeClnrest;
let ln: LightningBackend;
beforeEach(async () => {
  cln = await startFakeClnrest();
  ln = createClnLightning({ url: cln.url, rune: cln.rune });
});
afterEach(async () => {
  await ln.close();
  await cln.close();
});

describe("Core Lightning clnrest backend", () => {
  it("creates invoices for the amount, sees them paid, and knows their preimage", async () => {
    const inv = await ln.createInvoice(21, "coffee", 600);
    expect(Number(bolt11.decode(inv.request).millisatoshis)).toBe(21_000);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    cln.settle(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("PAID");
    expect(sha256((await ln.invoicePreimage!(inv))!)).toBe(inv.paymentHash);
  });

  it("refuses a wrong rune with a clear error", async () => {
    const bad = createClnLightning({ url: cln.url, rune: "nope" });
    await expect(bad.createInvoice(1, "x", 60)).rejects.toThrow(/cln invoice: HTTP 401/);
  });

  it("pays once: PAID with CLN's preimage and fee; paying the invoice again is refused before `pay`", async () => {
    const invoice = externalInvoice(20);
    const paid = await ln.payInvoice(invoice, 20_000, 5);
    expect(paid).toMatchObject({ state: "PAID", feeSat: 1 });
    expect(paid.preimage).toBe(cln.pays.get(hashOf(invoice))![0]!.preimage);
    const again = await ln.payInvoice(invoice, 20_000, 5);
    expect(again).toMatchObject({ state: "FAILED", reason: expect.stringMatching(/already paid/) });
    expect(cln.payCalls).toBe(1);
  });

  it("a failed pay is FAILED with CLN's message", async () => {
    cln.failNext = true;
    expect(await ln.payInvoice(externalInvoice(20), 20_000, 5)).toMatchObject({
      state: "FAILED",
      reason: expect.stringMatching(/Ran out of routes/),
    });
  });

  it("an answer lost after CLN paid is UNKNOWN; listpays then says PAID", async () => {
    const invoice = externalInvoice(20);
    cln.loseAnswerNext = true;
    expect((await ln.payInvoice(invoice, 20_000, 5)).state).toBe("UNKNOWN");
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({ state: "PAID", feeSat: 1 });
  });

  it("pending across a node restart: PENDING, then the end; a hash CLN never saw never left", async () => {
    const invoice = externalInvoice(20);
    cln.hangNext = true;
    expect((await ln.payInvoice(invoice, 20_000, 5)).state).toBe("UNKNOWN");
    expect(await ln.paymentState(hashOf(invoice))).toEqual({ state: "PENDING" });
    cln.finish(hashOf(invoice), "failed");
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({ state: "FAILED" });
    const fresh = createClnLightning({ url: cln.url, rune: cln.rune });
    expect(await fresh.paymentState("ab".repeat(32))).toMatchObject({ state: "FAILED" });
  });
});

describe("the mint on Core Lightning", () => {
  it("a melt whose answer is lost stays PENDING, survives a mint restart, and settles once CLN answers", async () => {
    const dir = tempDir();
    const start = () =>
      startMintServer({
        dataDir: dir,
        port: 0,
        lightning: createClnLightning({ url: cln.url, rune: cln.rune }),
        log: silentLogger,
      });
    let mint = await start();
    const wallet = await newWallet(mint.url);
    const q = await wallet.createMintQuoteBolt11(100);
    cln.settle(hashOf(q.request));
    const proofs = await wallet.mintProofsBolt11(100, q.quote);
    expect(sumAmounts(proofs)).toBe(100);

    const invoice = externalInvoice(50);
    const quote = await wallet.createMeltQuoteBolt11(invoice);
    cln.hangNext = true;
    expect((await wallet.meltProofsBolt11(quote, proofs)).quote.state).toBe("PENDING");

    await mint.close();
    cln.finish(hashOf(invoice), "complete");
    mint = await start();
    const w2 = await newWallet(mint.url);
    const after = await w2.checkMeltQuoteBolt11(quote.quote);
    expect(after.state).toBe("PAID");
    expect(new Set((await w2.checkProofsStates(proofs)).map((s) => s.state))).toEqual(new Set(["SPENT"]));
    expect(cln.payCalls).toBe(1);
    await mint.close();
  });
});
