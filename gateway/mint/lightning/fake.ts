/**
 * Fake Lightning node for local use (like nutshell's FakeWallet): invoices are real signed bolt11
 * strings that count as paid `incomingDelayMs` after creation; outgoing payments succeed.
 * Preimages are HMAC(node key, payment_secret), so the backend can answer for its own invoices
 * after a restart without storing anything.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import bolt11 from "bolt11";
import type { CreatedInvoice, IncomingState, LightningBackend, OutgoingResult } from "./types.js";

const NODE_KEY = createHash("sha256").update("owlrun fake lightning node").digest();
const BITCOIN = { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };

export interface FakeLightningOptions {
  /** how long after creation an invoice counts as paid (default 1000 ms) */
  incomingDelayMs?: number;
  /** how long a payment takes (default 0) */
  outgoingDelayMs?: number;
  /** make chosen payments fail, for tests */
  failOutgoing?: (request: string) => boolean;
}

const sha256hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const preimageFor = (paymentSecretHex: string) =>
  createHmac("sha256", NODE_KEY).update(Buffer.from(paymentSecretHex, "hex")).digest();

function decode(request: string) {
  const d = bolt11.decode(request);
  const tag = (name: string) => d.tags.find((t) => t.tagName === name)?.data as string | undefined;
  return {
    payee: d.payeeNodeKey,
    paymentHash: tag("payment_hash"),
    paymentSecret: tag("payment_secret"),
    timestampMs: (d.timestamp ?? 0) * 1000,
    expiresAt: d.timeExpireDate ?? (d.timestamp ?? 0) + 3600,
  };
}

export const FAKE_NODE_PUBKEY = Buffer.from(
  bolt11.sign(
    bolt11.encode({
      network: BITCOIN,
      satoshis: 1,
      tags: [{ tagName: "payment_hash", data: "00".repeat(32) }],
    }),
    NODE_KEY.toString("hex"),
  ).payeeNodeKey!,
  "hex",
).toString("hex");

export function createFakeLightning(opts: FakeLightningOptions = {}): LightningBackend {
  const incomingDelayMs = opts.incomingDelayMs ?? 1000;
  const outgoingDelayMs = opts.outgoingDelayMs ?? 0;
  const createdAt = new Map<string, number>();
  const outgoing = new Map<string, OutgoingResult>();
  const timers = new Set<NodeJS.Timeout>();
  const listeners: ((hash: string) => void)[] = [];

  return {
    name: "fake",

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const paymentSecret = randomBytes(32).toString("hex");
      const paymentHash = sha256hex(preimageFor(paymentSecret));
      const timestamp = Math.floor(Date.now() / 1000);
      const encoded = bolt11.encode({
        network: BITCOIN,
        satoshis: amountSat,
        timestamp,
        tags: [
          { tagName: "payment_hash", data: paymentHash },
          { tagName: "payment_secret", data: paymentSecret },
          { tagName: "description", data: description ?? "" },
          { tagName: "expire_time", data: expirySeconds },
        ],
      });
      const request = bolt11.sign(encoded, NODE_KEY.toString("hex")).paymentRequest!;
      createdAt.set(paymentHash, Date.now());
      const timer = setTimeout(() => {
        timers.delete(timer);
        for (const l of listeners) l(paymentHash);
      }, incomingDelayMs);
      timer.unref();
      timers.add(timer);
      return { request, paymentHash, expiresAt: timestamp + expirySeconds };
    },

    async invoiceState({ paymentHash, request }): Promise<IncomingState> {
      // Invoices from before a restart: fall back to the (whole-second) bolt11 timestamp.
      const created = createdAt.get(paymentHash) ?? decode(request).timestampMs;
      if (Date.now() >= created + incomingDelayMs) return "PAID";
      return Date.now() / 1000 > decode(request).expiresAt ? "EXPIRED" : "UNPAID";
    },

    feeReserveSat(amountMsat) {
      return Math.max(2, Math.ceil((amountMsat * 0.01) / 1000));
    },

    async payInvoice(request, _amountMsat, maxFeeSat): Promise<OutgoingResult> {
      if (outgoingDelayMs > 0) await new Promise((r) => setTimeout(r, outgoingDelayMs));
      const inv = decode(request);
      const hash = inv.paymentHash ?? sha256hex(Buffer.from(request));
      if (outgoing.get(hash)?.state === "PAID") return { state: "FAILED", reason: "invoice already paid" };
      if (opts.failOutgoing?.(request)) {
        const failed: OutgoingResult = { state: "FAILED", reason: "fake node: payment failed on request" };
        outgoing.set(hash, failed);
        return failed;
      }
      const own = inv.payee === FAKE_NODE_PUBKEY && inv.paymentSecret;
      const preimage = own
        ? preimageFor(inv.paymentSecret!).toString("hex")
        : sha256hex(Buffer.from(request));
      const paid: OutgoingResult = { state: "PAID", preimage, feeSat: Math.min(1, maxFeeSat) };
      outgoing.set(hash, paid);
      return paid;
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      // A fake node that forgot a payment (restart) never really sent anything: report FAILED.
      return outgoing.get(paymentHash) ?? { state: "FAILED", reason: "unknown payment" };
    },

    onInvoicePaid(listener) {
      listeners.push(listener);
    },

    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
