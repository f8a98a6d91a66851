/**
 * kill -9 of the mint while a melt's Lightning payment is in flight: on restart the mint asks the
 * backend, and the locked proofs are either spent (paid) or free again (not paid). Nothing is lost
 * and nothing is paid twice.
 */
import { CheckStateEnum } from "@cashu/cashu-ts";
import { describe, expect, it } from "vitest";
import { externalInvoice, postJson, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { startCli, tempDir } from "../support/cli-process.js";

describe("crash during a melt", () => {
  it("proofs stay PENDING while paying, and come back UNSPENT after kill -9 + restart when nothing was paid", async () => {
    const dir = tempDir();
    const args = [
      "mint",
      "--port",
      "0",
      "--data-dir",
      dir,
      "--fake-delay-ms",
      "20",
      "--fake-pay-delay-ms",
      "60000",
    ];
    const first = await startCli(args);
    const wallet = await newWallet(first.url);
    const proofs = await mintProofs(wallet, 40);
    const quote = (
      await postJson(`${first.url}/v1/melt/quote/bolt11`, { request: externalInvoice(30), unit: "sat" })
    ).body;

    // The melt blocks on the slow payment; do not await it.
    const inflight = postJson(`${first.url}/v1/melt/bolt11`, {
      quote: quote.quote,
      inputs: rawProofs(proofs),
    }).catch(() => "connection lost");
    for (let i = 0; i < 100; i++) {
      const states = await wallet.checkProofsStates(proofs);
      if (states.every((s) => s.state === CheckStateEnum.PENDING)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await wallet.checkProofsStates(proofs)).map((s) => s.state)).toEqual(proofs.map(() => "PENDING"));
    // The same request again (a wallet retrying a lost answer) gets the quote as it stands (NUT-19);
    // another melt of the same quote is refused while pending.
    const retry = await postJson(`${first.url}/v1/melt/bolt11`, {
      quote: quote.quote,
      inputs: rawProofs(proofs),
    });
    expect(retry.status).toBe(200);
    expect(retry.body.state).toBe("PENDING");
    const again = await postJson(`${first.url}/v1/melt/bolt11`, {
      quote: quote.quote,
      inputs: rawProofs(proofs).reverse(),
    });
    expect(again.body.code).toBe(20005);

    await first.kill();
    expect(await inflight).toBe("connection lost");

    // The fake node never completed the payment: recovery frees the proofs and the quote.
    const second = await startCli(args.map((a) => (a === "60000" ? "0" : a)));
    try {
      const w2 = await newWallet(second.url);
      const states = await w2.checkProofsStates(proofs);
      expect(states.map((s) => s.state)).toEqual(proofs.map(() => "UNSPENT"));
      const q = (await (await fetch(`${second.url}/v1/melt/quote/bolt11/${quote.quote}`)).json()) as any;
      expect(q.state).toBe("UNPAID");
      // ...and the same proofs can pay the same quote now, once.
      const meltQuote = await w2.checkMeltQuoteBolt11(quote.quote);
      const paid = await w2.meltProofsBolt11(meltQuote, proofs);
      expect(paid.quote.state).toBe("PAID");
      expect(sumAmounts(paid.change)).toBe(40 - 30 - 1);
    } finally {
      await second.stop();
    }
  });
});
