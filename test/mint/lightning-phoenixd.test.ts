/**
 * The phoenixd backend against a local server that speaks phoenixd's API: auth and form encoding,
 * invoices that decode to the amount, payments whose preimage hashes to the invoice, failures,
 * lost answers (UNKNOWN, then settled by paymentState), the websocket push. Then the mint on it:
 * top-ups paid through phoenixd, melts with the real routing fee, failed payments that free the
 * proofs, and a payment whose answer was lost — PENDING until the restarted mint asks phoenixd.
 */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createPhoenixdLightning,
  type LightningBackend,
  LightningBackendError,
} from "../../gateway/mint/lightning/index.js";
import { externalInvoice } from "../support/blinded.js";
import { newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type FakePhoenixd, startFakePhoenixd } from "../support/fake-phoenixd.js";

const sha256 = (hex: string) => createHash("sha256").update(Buffer.from(hex, "hex")).digest("hex");
const hashOf = (invoice: string) => bolt11.decode(invoice).tagsObject.payment_hash!;

describe("phoenixd Lightning backend", () => {
  let phoenix: FakePhoenixd;
  let ln: LightningBackend;
  const opened: LightningBackend[] = [];
  const backend = (opts: Partial<Parameters<typeof createPhoenixdLightning>[0]> = {}) => {
    const b = createPhoenixdLightning({ url: phoenix.url, password: phoenix.password, ...opts });
    opened.push(b);
    return b;
  };

  beforeEach(async () => {
    phoenix = await startFakePhoenixd("hunter2");
    ln = backend();
  });
  afterEach(async () => {
    for (const b of opened.splice(0)) await b.close();
    await phoenix.close();
  });

  it("creates invoices with Basic auth and form-encoded fields, for the requested amount", async () => {
    const inv = await ln.createInvoice(1337, "tea", 900);
    const req = phoenix.requests.at(-1)!;
    expect(req).toMatchObject({ method: "POST", path: "/createinvoice" });
    expect(req.authorization).toBe(`Basic ${Buffer.from(":hunter2").toString("base64")}`);
    expect(req.contentType).toBe("application/x-www-form-urlencoded");
    expect(req.form).toEqual({ amountSat: "1337", description: "tea", expirySeconds: "900" });
    expect(inv.request.startsWith("lnbc13370n1")).toBe(true);
    const d = bolt11.decode(inv.request);
    expect(Number(d.millisatoshis)).toBe(1_337_000);
    expect(d.tagsObject.payment_hash).toBe(inv.paymentHash);
    expect(inv.expiresAt).toBe(d.timeExpireDate);
    // phoenixd refuses descriptions over 128 characters: we shorten them rather than fail the quote.
    await ln.createInvoice(1, "x".repeat(300), 60);
    expect(phoenix.requests.at(-1)!.form.description).toHaveLength(128);
  });

  it("reads the invoice state: unpaid, then paid", async () => {
    const inv = await ln.createInvoice(10, undefined, 600);
    expect(await ln.invoiceState(inv)).toBe("UNPAID");
    phoenix.markPaid(inv.paymentHash);
    expect(await ln.invoiceState(inv)).toBe("PAID");
    expect(phoenix.requests.at(-1)!.path).toBe(`/payments/incoming/${inv.paymentHash}`);
  });

  it("says clearly when the password is wrong, and pays nothing", async () => {
    const wrong = backend({ password: "nope" });
    await expect(wrong.createInvoice(10, "x", 60)).rejects.toThrow(LightningBackendError);
    await expect(wrong.createInvoice(10, "x", 60)).rejects.toThrow(/HTTP 401/);
    const paid = await wrong.payInvoice(externalInvoice(10), 10_000, 4);
    expect(paid.state).toBe("FAILED");
    expect(paid.reason).toMatch(/401/);
    expect(phoenix.outgoing.size).toBe(0);
  });

  it("turns a surprising answer into a LightningBackendError", async () => {
    const odd = backend({
      fetchImpl: async () => new Response(JSON.stringify({ hello: "world" }), { status: 200 }),
    });
    await expect(odd.createInvoice(10, "x", 60)).rejects.toThrow(LightningBackendError);
    const unreachable = backend({ url: "http://127.0.0.1:1" });
    await expect(unreachable.createInvoice(10, "x", 60)).rejects.toThrow(LightningBackendError);
  });

  it("pays: the preimage hashes to the invoice's payment hash, the fee is phoenixd's", async () => {
    phoenix.routingFeeSat = 3;
    const invoice = phoenix.remoteInvoice(500);
    const paid = await ln.payInvoice(invoice, 500_000, 10);
    expect(paid.state).toBe("PAID");
    expect(sha256(paid.preimage!)).toBe(hashOf(invoice));
    expect(paid.feeSat).toBe(3);
    expect(paid.paymentId).toBeTruthy();
    // An invoice with an amount is paid as is: no amountSat override.
    expect(phoenix.requests.at(-1)!.form).toEqual({ invoice });
    expect(await ln.paymentState(hashOf(invoice))).toMatchObject({
      state: "PAID",
      preimage: paid.preimage,
      feeSat: 3,
    });
    // phoenixd refuses to pay it again.
    expect((await ln.payInvoice(invoice, 500_000, 10)).state).toBe("FAILED");
  });

  it("reports a payment phoenixd could not make as FAILED, with its reason", async () => {
    phoenix.failNextPayment("no route to recipient");
    const invoice = externalInvoice(50);
    expect(await ln.payInvoice(invoice, 50_000, 4)).toEqual({
      state: "FAILED",
      reason: "no route to recipient",
    });
    expect((await ln.paymentState(hashOf(invoice))).state).toBe("FAILED");
  });

  it("a dropped connection is UNKNOWN (never retried), and paymentState finds the payment", async () => {
    phoenix.dropConnectionOnNextPay();
    const invoice = phoenix.remoteInvoice(80);
    const lost = await ln.payInvoice(invoice, 80_000, 4);
    expect(lost.state).toBe("UNKNOWN");
    expect(phoenix.requests.filter((r) => r.path === "/payinvoice")).toHaveLength(1);
    const found = await ln.paymentState(hashOf(invoice));
    expect(found.state).toBe("PAID");
    expect(sha256(found.preimage!)).toBe(hashOf(invoice));
  });

  it("a 5xx is UNKNOWN; a payment phoenixd never recorded is PENDING right after, FAILED after a restart", async () => {
    phoenix.errorOnNextPay();
    const invoice = externalInvoice(30);
    expect((await ln.payInvoice(invoice, 30_000, 4)).state).toBe("UNKNOWN");
    // Our request might still be on its way: do not free the proofs yet.
    expect((await ln.paymentState(hashOf(invoice))).state).toBe("PENDING");
    expect((await backend().paymentState(hashOf(invoice))).state).toBe("FAILED");
  });

  it("a payment in progress is PENDING until phoenixd settles it", async () => {
    phoenix.holdNextPayment();
    const invoice = externalInvoice(40);
    const paying = ln.payInvoice(invoice, 40_000, 4);
    await expect.poll(() => phoenix.outgoing.size).toBe(1);
    expect((await backend().paymentState(hashOf(invoice))).state).toBe("PENDING");
    phoenix.releaseHeldPayment();
    expect((await paying).state).toBe("PAID");
    expect((await ln.paymentState(hashOf(invoice))).state).toBe("PAID");
  });

  it("does not take an old phoenixd's unknown endpoint for a missing payment", async () => {
    const old = backend({
      fetchImpl: async () => new Response("Unknown endpoint (check api doc)", { status: 404 }),
    });
    expect((await old.paymentState("11".repeat(32))).state).toBe("UNKNOWN");
  });

  it("pushes payment_received from the websocket, and reconnects after a drop", async () => {
    const seen: string[] = [];
    ln.onInvoicePaid!((h) => seen.push(h));
    await expect.poll(() => phoenix.websocketClients()).toBe(1);
    const a = await ln.createInvoice(10, "a", 600);
    phoenix.markPaid(a.paymentHash);
    await expect.poll(() => seen).toEqual([a.paymentHash]);

    await phoenix.dropWebsockets();
    await expect.poll(() => phoenix.websocketClients(), { timeout: 5000 }).toBe(1);
    const b = await ln.createInvoice(10, "b", 600);
    phoenix.markPaid(b.paymentHash);
    await expect.poll(() => seen).toEqual([a.paymentHash, b.paymentHash]);
    await ln.close();
    await expect.poll(() => phoenix.websocketClients()).toBe(0);
  });

  it("survives a websocket that cannot connect", async () => {
    const dead = backend({ url: "http://127.0.0.1:1" });
    dead.onInvoicePaid!(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    await dead.close();
  });

  it("reserves max(4 sat, 1%) by default, or what it is told", () => {
    expect(ln.feeReserveSat(100_000)).toBe(4);
    expect(ln.feeReserveSat(1_000_000)).toBe(10);
    expect(backend({ feeReserveMinSat: 1, feeReservePpm: 5000 }).feeReserveSat(1_000_000)).toBe(5);
  });
});

describe("the mint on phoenixd", () => {
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
    await mint?.stop();
    await phoenix?.close();
  });

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
    phoenix.dropConnectionOnNextPay();
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
