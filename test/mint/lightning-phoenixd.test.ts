/**
 * The mint on the phoenixd backend (against a local server that speaks phoenixd's API): top-ups
 * paid through phoenixd, melts with the real routing fee, failed payments that free the proofs, and
 * a payment whose answer was lost — PENDING until the restarted mint asks phoenixd, then PAID once.
 */
import bolt11 from "bolt11";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice } from "../support/blinded.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FakePhoenixd, startFakePhoenixd } from "../support/fake-phoenixd.js";

let phoenix: FakePhoenixd;
let mint: CliProcess;
let dir: string;
const args = () => [
  "mint",
  "--port",
  "0",
  "--data-dir",
  dir,
  "--lightning",
  "phoenixd",
  "--phoenixd-url",
  phoenix.url,
];
const env = () => ({ OWLRUN_PHOENIXD_PASSWORD: phoenix.password });

beforeAll(async () => {
  phoenix = await startFakePhoenixd();
  dir = tempDir();
  mint = await startCli(args(), env());
});
afterAll(async () => {
  await mint.stop();
  await phoenix.close();
});

describe("phoenixd Lightning backend", () => {
  it("refuses to start without the password", async () => {
    const { runCli } = await import("../support/cli-process.js");
    const r = await runCli(["mint", "--port", "0", "--data-dir", tempDir(), "--lightning", "phoenixd"], {
      OWLRUN_PHOENIXD_PASSWORD: "",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/phoenixd-password/);
  });

  it("mints when phoenixd reports the invoice paid, melts with the real fee, frees proofs when a payment fails", async () => {
    const wallet = await newWallet(mint.url);
    const quote = await wallet.createMintQuoteBolt11(300);
    expect(Number(bolt11.decode(quote.request).satoshis)).toBe(300);
    expect((await wallet.checkMintQuoteBolt11(quote.quote)).state).toBe("UNPAID");
    phoenix.markPaid(bolt11.decode(quote.request).tagsObject.payment_hash!);
    const paid = await wallet.on.onceMintPaid(quote.quote, { timeoutMs: 10_000 });
    expect(paid.state).toBe("PAID");
    let proofs = await wallet.mintProofsBolt11(300, quote.quote);

    const mq = await wallet.createMeltQuoteBolt11(externalInvoice(100));
    expect(mq.fee_reserve.toNumber()).toBe(4); // phoenixd reserve: max(4 sat, 1%)
    const { send, keep } = await wallet.send(104, proofs);
    const melted = await wallet.meltProofsBolt11(mq, send);
    expect(melted.quote.state).toBe("PAID");
    expect(sumAmounts(melted.change)).toBe(3); // 4 reserved, 1 sat routing fee
    proofs = [...keep, ...melted.change];

    phoenix.failNextPayment();
    const mq2 = await wallet.createMeltQuoteBolt11(externalInvoice(50));
    const { send: s2, keep: k2 } = await wallet.send(54, proofs);
    await expect(wallet.meltProofsBolt11(mq2, s2)).rejects.toThrow(/payment failed/i);
    const states = await wallet.checkProofsStates(s2);
    expect(states.every((s) => s.state === "UNSPENT")).toBe(true);
    proofs = [...k2, ...s2];
    expect(sumAmounts(proofs)).toBe(300 - 101);
  });

  it("a payment whose answer was lost stays PENDING, and the restarted mint settles it once", async () => {
    const wallet = await newWallet(mint.url);
    const quote = await wallet.createMintQuoteBolt11(200);
    phoenix.markPaid(bolt11.decode(quote.request).tagsObject.payment_hash!);
    await wallet.on.onceMintPaid(quote.quote, { timeoutMs: 10_000 });
    const proofs = await wallet.mintProofsBolt11(200, quote.quote);
    const invoice = externalInvoice(80);
    const mq = await wallet.createMeltQuoteBolt11(invoice);
    phoenix.dropNextPaymentAnswer();
    const res = await fetch(`${mint.url}/v1/melt/bolt11`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        quote: mq.quote,
        inputs: proofs.map((p) => ({
          amount: Number(p.amount.toString()),
          id: p.id,
          secret: p.secret,
          C: p.C,
        })),
      }),
    });
    const body = (await res.json()) as any;
    expect(body.state).toBe("PENDING");
    expect((await wallet.checkProofsStates(proofs)).every((s) => s.state === "PENDING")).toBe(true);

    await mint.stop();
    mint = await startCli(args(), env());
    const after = (await (
      await fetch(`${mint.url}/v1/melt/bolt11/${mq.quote}`.replace("/melt/bolt11/", "/melt/quote/bolt11/"))
    ).json()) as any;
    expect(after.state).toBe("PAID");
    expect(after.payment_preimage).toBe(
      phoenix.outgoing.get(bolt11.decode(invoice).tagsObject.payment_hash!)!.preimage,
    );
    const w2 = await newWallet(mint.url);
    expect((await w2.checkProofsStates(proofs)).every((s) => s.state === "SPENT")).toBe(true);
    // Paid exactly once.
    expect([...phoenix.outgoing.values()].filter((p) => p.isPaid)).toHaveLength(2);
  });
});
