/** The fake Lightning backend: real signed bolt11, paid after the delay, preimages that match, no double pay. */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { describe, expect, it } from "vitest";
import { createFakeLightning, FAKE_NODE_PUBKEY } from "../../gateway/mint/lightning/index.js";
import { externalInvoice } from "../support/blinded.js";

const sha256 = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fake Lightning", () => {
  it("issues real signed mainnet invoices for the requested amount", async () => {
    const ln = createFakeLightning();
    const inv = await ln.createInvoice(1337, "coffee", 600);
    expect(inv.request.startsWith("lnbc13370n1")).toBe(true);
    const d = bolt11.decode(inv.request);
    expect(d.complete).toBe(true);
    expect(d.payeeNodeKey).toBe(FAKE_NODE_PUBKEY);
    expect(Number(d.millisatoshis)).toBe(1_337_000);
    expect(d.tagsObject.payment_hash).toBe(inv.paymentHash);
    expect(d.tagsObject.payment_secret).toMatch(/^[0-9a-f]{64}$/);
    expect(d.tagsObject.description).toBe("coffee");
    expect(d.tagsObject.expire_time).toBe(600);
    expect(inv.expiresAt).toBe(d.timeExpireDate);
    expect(bolt11.decode((await ln.createInvoice(2, undefined, 60)).request).tagsObject.description).toBe("");
    await ln.close();
  });

  it("counts an invoice as paid only after the delay, pushes it, and still knows after a restart", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 150 });
    const pushed: string[] = [];
    ln.onInvoicePaid!((h) => pushed.push(h));
    const inv = await ln.createInvoice(21, "coffee", 600);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    expect(pushed).toEqual([]);
    await expect.poll(() => pushed, { timeout: 5000 }).toEqual([inv.paymentHash]);
    expect(await ln.invoiceState(inv)).toBe("PAID");
    await ln.close();

    // A new instance (a restarted mint) reads the creation time from the invoice itself...
    const restarted = createFakeLightning({ incomingDelayMs: 150 });
    expect(await restarted.invoiceState(inv)).toBe("PAID");
    // ...and recomputes the preimage of its own invoice from the payment secret.
    const paid = await restarted.payInvoice(inv.request, 21_000, 5);
    expect(paid.state).toBe("PAID");
    expect(sha256(paid.preimage!)).toBe(inv.paymentHash);
    // A node with a long delay has not been paid yet.
    expect(await createFakeLightning({ incomingDelayMs: 60_000 }).invoiceState(inv)).toBe("UNPAID");
  });

  it("lets an invoice expire unpaid when the delay outlasts its expiry", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 60_000 });
    const pushed: string[] = [];
    ln.onInvoicePaid!((h) => pushed.push(h));
    const inv = await ln.createInvoice(5, undefined, 1);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    await sleep(1100);
    expect(await ln.invoiceState(inv)).toBe("EXPIRED");
    expect(pushed).toEqual([]);
    await ln.close();
  });

  it("close() stops pending notifications", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 50 });
    const pushed: string[] = [];
    ln.onInvoicePaid!((h) => pushed.push(h));
    await ln.createInvoice(5, undefined, 600);
    await ln.close();
    await sleep(150);
    expect(pushed).toEqual([]);
  });

  it("pays an invoice once, with the true preimage of its own invoices", async () => {
    const ln = createFakeLightning({ incomingDelayMs: 60_000 });
    const own = await ln.createInvoice(5, undefined, 600);
    const paid = await ln.payInvoice(own.request, 5000, 2);
    expect(paid).toMatchObject({ state: "PAID", feeSat: 1 });
    expect(sha256(paid.preimage!)).toBe(own.paymentHash);
    const again = await ln.payInvoice(own.request, 5000, 2);
    expect(again).toMatchObject({ state: "FAILED", reason: "invoice already paid" });
    expect(await ln.paymentState(own.paymentHash)).toEqual(paid);

    // Someone else's invoice: paid, with a stand-in preimage that is stable; fee capped by the reserve.
    const ext = externalInvoice(900);
    const extPaid = await ln.payInvoice(ext, 900_000, 0);
    expect(extPaid).toMatchObject({ state: "PAID", feeSat: 0 });
    expect(extPaid.preimage).toMatch(/^[0-9a-f]{64}$/);
    const extHash = bolt11.decode(ext).tagsObject.payment_hash!;
    expect((await ln.paymentState(extHash)).preimage).toBe(extPaid.preimage);
    await ln.close();
  });

  it("fails payments on request, on garbage, and for hashes it never paid", async () => {
    const target = externalInvoice(900);
    const ln = createFakeLightning({ failOutgoing: (r) => r === target });
    const refused = await ln.payInvoice(target, 900_000, 9);
    expect(refused.state).toBe("FAILED");
    expect(refused.reason).toBeTruthy();
    expect((await ln.paymentState(bolt11.decode(target).tagsObject.payment_hash!)).state).toBe("FAILED");
    expect((await ln.payInvoice(externalInvoice(10), 10_000, 2)).state).toBe("PAID");
    expect((await ln.payInvoice("lnbc1notaninvoice", 1000, 2)).state).toBe("FAILED");
    expect((await ln.paymentState("00".repeat(32))).state).toBe("FAILED");
    await ln.close();
  });

  it("reports a slow payment PENDING and refuses to pay it twice meanwhile", async () => {
    const ln = createFakeLightning({ outgoingDelayMs: 150 });
    const inv = externalInvoice(50);
    const hash = bolt11.decode(inv).tagsObject.payment_hash!;
    const first = ln.payInvoice(inv, 50_000, 2);
    expect((await ln.paymentState(hash)).state).toBe("PENDING");
    expect((await ln.payInvoice(inv, 50_000, 2)).state).toBe("FAILED");
    expect((await first).state).toBe("PAID");
    expect((await ln.paymentState(hash)).state).toBe("PAID");
    await ln.close();
  });

  it("reserves max(2 sat, 1%)", () => {
    const ln = createFakeLightning();
    expect(ln.feeReserveSat(10_000)).toBe(2);
    expect(ln.feeReserveSat(1_000_000)).toBe(10);
    expect(ln.feeReserveSat(1_000_001)).toBe(11);
  });
});
