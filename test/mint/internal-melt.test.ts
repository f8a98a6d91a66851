/**
 * Paying an invoice this mint issued settles inside the mint: no routing fee, and the mint quote
 * behind the invoice becomes PAID so its owner can mint, and the payer learns the preimage. A second
 * payment of it is refused.
 */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
beforeAll(async () => {
  // Fake invoices pay themselves only after 4 s: the internal melt below settles well before that.
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "4000"]);
});
afterAll(async () => {
  await mint.stop();
});

describe("internal settlement", () => {
  it("pays the mint's own invoice with fee 0 and lets the payee mint", async () => {
    const payer = await newWallet(mint.url);
    const payee = await newWallet(mint.url);
    const funds = await mintProofs(payer, 50);

    const invoiceQuote = await payee.createMintQuoteBolt11(20);
    expect(invoiceQuote.state).toBe("UNPAID");
    const meltQuote = await payer.createMeltQuoteBolt11(invoiceQuote.request);
    expect(meltQuote.fee_reserve.toNumber()).toBe(0);
    const melted = await payer.meltProofsBolt11(meltQuote, funds);
    expect(melted.quote.state).toBe("PAID");
    expect(sumAmounts(melted.change)).toBe(30);
    // The payer gets the invoice's preimage, as from a Lightning payment (L402 proves payment with it).
    const preimage = melted.quote.payment_preimage!;
    expect(createHash("sha256").update(Buffer.from(preimage, "hex")).digest("hex")).toBe(
      bolt11.decode(invoiceQuote.request).tagsObject.payment_hash,
    );

    expect((await payee.checkMintQuoteBolt11(invoiceQuote.quote)).state).toBe("PAID");
    const minted = await payee.mintProofsBolt11(20, invoiceQuote.quote);
    expect(sumAmounts(minted)).toBe(20);

    // The invoice is paid: a new melt quote for it is refused.
    await expect(payer.createMeltQuoteBolt11(invoiceQuote.request)).rejects.toThrow(/already paid/i);
  });
});
