/** The fake Lightning backend: real signed bolt11, paid after the delay, preimages that match, no double pay. */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { describe, expect, it } from "vitest";
import { createFakeLightning } from "../../gateway/mint/lightning/index.js";
import { externalInvoice } from "../support/blinded.js";

describe("fake Lightning", () => {
  it("issues signed invoices for the amount that count as paid only after the delay, also after a restart", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 150 });
    const inv = await ln.createInvoice(21, "coffee", 600);
    const d = bolt11.decode(inv.request);
    expect(d.complete).toBe(true);
    expect(Number(d.millisatoshis)).toBe(21_000);
    expect(d.tagsObject.payment_hash).toBe(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    const pushed = new Promise<string>((r) => ln.onInvoicePaid!(r));
    expect(await pushed).toBe(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("PAID");
    await ln.close();
    // A new instance (a restarted mint) still knows from the invoice itself (whole-second timestamps).
    await new Promise((r) => setTimeout(r, 1100));
    expect(await createFakeLightning({ incomingDelayMs: 150 }).invoiceState(inv)).toBe("PAID");
  });

  it("pays invoices once, reveals the true preimage of its own invoices, and can be told to fail", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 60_000, failOutgoing: (r) => r.includes("9u1") });
    const own = await ln.createInvoice(5, undefined, 600);
    const paid = await ln.payInvoice(own.request, 5000, 2);
    expect(paid.state).toBe("PAID");
    expect(createHash("sha256").update(Buffer.from(paid.preimage!, "hex")).digest("hex")).toBe(
      own.paymentHash,
    );
    expect(paid.feeSat).toBe(1);
    expect((await ln.payInvoice(own.request, 5000, 2)).state).toBe("FAILED");
    expect((await ln.paymentState(own.paymentHash)).state).toBe("PAID");
    const refused = await ln.payInvoice(externalInvoice(900), 900_000, 9);
    expect(refused.state).toBe("FAILED");
    expect((await ln.paymentState("00".repeat(32))).state).toBe("FAILED");
    expect(ln.feeReserveSat(1_000_000)).toBe(10);
    expect(ln.feeReserveSat(10_000)).toBe(2);
    await ln.close();
  });
});
