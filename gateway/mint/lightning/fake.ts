/**
 * Fake Lightning node for local use (like nutshell's FakeWallet): invoices are real signed bolt11
 * strings that count as paid `incomingDelayMs` after creation; outgoing payments succeed.
 * Preimages are HMAC(node key, payment_secret), so the backend can answer for its own invoices
 * after a restart without storing anything.
 */
import { createHash, createHmac, randomBytes } from "node:crypto";
import bolt11 from "bolt11";
import secp from "secp256k1";
import type { CreatedInvoice, IncomingState, LightningBackend, OutgoingResult } from "./types.js";

const NODE_KEY = createHash("sha256").update("owlrun fake lightning node").digest();
/** hex compressed public key of the fake node: the payee of every invoice it issues */
export const FAKE_NODE_PUBKEY = Buffer.from(secp.publicKeyCreate(NODE_KEY, true)).toString("hex");
const MAINNET = { bech32: "bc", pubKeyHash: 0x00, scriptHash: 0x05, validWitnessVersions: [0, 1] };

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
  const timestamp = d.timestamp ?? 0;
  return {
    payee: d.payeeNodeKey,
    paymentHash: d.tagsObject.payment_hash,
    paymentSecret: d.tagsObject.payment_secret,
    timestampMs: timestamp * 1000,
    expiresAt: d.timeExpireDate ?? timestamp + 3600,
  };
}

export function createFakeLightning(opts: FakeLightningOptions = {}): LightningBackend {
  const incomingDelayMs = opts.incomingDelayMs ?? 1000;
  const outgoingDelayMs = opts.outgoingDelayMs ?? 0;
  // Creation time in ms of invoices made by this instance (bolt11 timestamps are whole seconds).
  const createdAt = new Map<string, number>();
  const outgoing = new Map<string, OutgoingResult>();
  const timers = new Set<NodeJS.Timeout>();
  const listeners: ((hash: string) => void)[] = [];
  let closed = false;

  const notifyPaid = (paymentHash: string) => {
    for (const l of listeners) {
      try {
        l(paymentHash);
      } catch {
        // a listener's bug must not stop the others (or crash the timer)
      }
    }
  };

  return {
    name: "fake",
    // Nothing real moves, so expiry is moot: any well-formed invoice is paid (CDK and nutshell too).
    paysExpiredInvoices: true,

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const paymentSecret = randomBytes(32).toString("hex");
      const paymentHash = sha256hex(preimageFor(paymentSecret));
      const timestamp = Math.floor(Date.now() / 1000);
      const encoded = bolt11.encode({
        network: MAINNET,
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
      if (!closed && incomingDelayMs <= expirySeconds * 1000) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          notifyPaid(paymentHash);
        }, incomingDelayMs);
        timer.unref();
        timers.add(timer);
      }
      return { request, paymentHash, expiresAt: timestamp + expirySeconds };
    },

    async invoiceState({ paymentHash, request }): Promise<IncomingState> {
      const inv = decode(request);
      // The fake payer pays every invoice after the delay, unless it expires first (delay > expiry).
      if (incomingDelayMs <= inv.expiresAt * 1000 - inv.timestampMs) {
        // Invoices from before a restart: fall back to the (whole-second) bolt11 timestamp.
        const created = createdAt.get(paymentHash) ?? inv.timestampMs;
        return Date.now() >= created + incomingDelayMs ? "PAID" : "UNPAID";
      }
      return Date.now() > inv.expiresAt * 1000 ? "EXPIRED" : "UNPAID";
    },

    async invoicePreimage({ paymentHash, request }) {
      const inv = decode(request);
      if (inv.payee !== FAKE_NODE_PUBKEY || !inv.paymentSecret) return undefined;
      const preimage = preimageFor(inv.paymentSecret);
      return sha256hex(preimage) === paymentHash ? preimage.toString("hex") : undefined;
    },

    feeReserveSat(amountMsat) {
      return Math.max(2, Math.ceil((amountMsat * 0.01) / 1000));
    },

    async payInvoice(request, _amountMsat, maxFeeSat): Promise<OutgoingResult> {
      let inv: ReturnType<typeof decode>;
      try {
        inv = decode(request);
      } catch (err) {
        return { state: "FAILED", reason: `invalid bolt11 invoice: ${(err as Error).message}` };
      }
      const hash = inv.paymentHash ?? sha256hex(Buffer.from(request));
      const earlier = outgoing.get(hash)?.state;
      if (earlier === "PAID" || earlier === "PENDING")
        return { state: "FAILED", reason: "invoice already paid" };
      outgoing.set(hash, { state: "PENDING" });
      if (outgoingDelayMs > 0) await new Promise((r) => setTimeout(r, outgoingDelayMs));

      let result: OutgoingResult;
      if (opts.failOutgoing?.(request)) {
        result = { state: "FAILED", reason: "fake node: payment failed on request" };
      } else {
        // Our own invoices get their true preimage; others a stand-in (nobody can check it anyway).
        const own = inv.payee === FAKE_NODE_PUBKEY && inv.paymentSecret;
        const preimage = own
          ? preimageFor(inv.paymentSecret!).toString("hex")
          : sha256hex(Buffer.from(request));
        result = { state: "PAID", preimage, feeSat: Math.min(1, maxFeeSat) };
      }
      outgoing.set(hash, result);
      return result;
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      // Payments live only in memory. A fake node that forgot one (restart) never moved any real
      // money, so FAILED is the honest answer and frees the melt's proofs.
      return (
        outgoing.get(paymentHash) ?? { state: "FAILED", reason: "fake node has no record of this payment" }
      );
    },

    onInvoicePaid(listener) {
      listeners.push(listener);
    },

    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
