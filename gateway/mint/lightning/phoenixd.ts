/**
 * phoenixd over its HTTP API: Basic auth with an empty user, form-encoded writes, JSON answers.
 * `/payinvoice` is not idempotent, so a payment whose answer was lost is reported UNKNOWN (never
 * retried here); the mint keeps the melt PENDING and later asks `/payments/outgoingbyhash/{hash}`
 * (phoenixd >= 0.5.0).
 */
import bolt11 from "bolt11";
import { WebSocket } from "ws";
import * as z from "zod";
import { LightningBackendError } from "./errors.js";
import {
  type CreatedInvoice,
  type IncomingState,
  type LightningBackend,
  type OutgoingResult,
  routingFeeReserveSat,
} from "./types.js";

export interface PhoenixdOptions {
  /** e.g. http://127.0.0.1:9740 */
  url: string;
  /** phoenixd's `http-password` (paying needs the full-access one) */
  password: string;
  /** not supported: incoming payments come from polling and the websocket, not webhooks */
  webhookSecret?: never;
  /** default 4 sat */
  feeReserveMinSat?: number;
  /** parts per million of the amount (default 10 000 = 1%) */
  feeReservePpm?: number;
  fetchImpl?: typeof fetch;
}

const READ_TIMEOUT_MS = 30_000;
// phoenixd answers /payinvoice only once the payment settles or fails; past this we say UNKNOWN.
const PAY_TIMEOUT_MS = 120_000;
// A payment this instance sent that phoenixd has not recorded yet is still in flight, not failed.
const IN_FLIGHT_GRACE_MS = 120_000;
const MAX_DESCRIPTION = 128; // phoenixd refuses longer descriptions

const hex32 = z.string().regex(/^[0-9a-f]{64}$/i);
// phoenixd omits null fields (explicitNulls = false); nullish also accepts an explicit null.
const GeneratedInvoice = z.looseObject({ paymentHash: hex32, serialized: z.string().min(1) });
const IncomingPayment = z.looseObject({
  isPaid: z.boolean(),
  isExpired: z.boolean().nullish(),
  preimage: hex32.nullish(),
});
const PaymentSent = z.looseObject({
  paymentHash: hex32,
  paymentPreimage: hex32,
  routingFeeSat: z.number().nonnegative(),
  paymentId: z.string().nullish(),
});
// phoenixd answers a payment that could not be made with HTTP 200 and this body.
const PaymentFailed = z.looseObject({ reason: z.string() });
const OutgoingPayment = z.looseObject({
  paymentId: z.string().nullish(),
  preimage: hex32.nullish(),
  isPaid: z.boolean(),
  fees: z.number().nonnegative().nullish(), // msat
  completedAt: z.number().nullish(),
});
const WsEvent = z.looseObject({ type: z.string(), paymentHash: hex32.optional() });

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

function tryJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function truncateDescription(s: string): string {
  let t = s.slice(0, MAX_DESCRIPTION);
  if (/[\uD800-\uDBFF]$/.test(t)) t = t.slice(0, -1); // do not cut a surrogate pair in half
  return t;
}

export function createPhoenixdLightning(opts: PhoenixdOptions): LightningBackend {
  const base = opts.url.replace(/\/+$/, "");
  const auth = `Basic ${Buffer.from(`:${opts.password}`).toString("base64")}`;
  const doFetch = opts.fetchImpl ?? fetch;
  const listeners: ((hash: string) => void)[] = [];
  const sentAt = new Map<string, number>(); // payment hash -> when this instance asked phoenixd to pay it
  let ws: WebSocket | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let backoffMs = 1000;
  let closed = false;

  /** Throws on network errors and timeouts; callers decide what that means. */
  const call = async (path: string, form?: Record<string, string>, timeoutMs = READ_TIMEOUT_MS) => {
    const res = await doFetch(`${base}${path}`, {
      method: form ? "POST" : "GET",
      headers: {
        authorization: auth,
        accept: "application/json",
        ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    return { status: res.status, text, json: tryJson(text) } satisfies Answer;
  };

  /** For reads and invoice creation: any failure is a clear LightningBackendError. */
  const read = async (what: string, path: string, form?: Record<string, string>): Promise<Answer> => {
    try {
      return await call(path, form);
    } catch (err) {
      throw new LightningBackendError(`phoenixd ${what}: ${(err as Error).message}`, { cause: err });
    }
  };

  const parse = <S extends z.ZodType>(schema: S, a: Answer, what: string): z.infer<S> => {
    const r = schema.safeParse(a.json);
    if (!r.success)
      throw new LightningBackendError(`phoenixd ${what}: unexpected answer ${a.text.slice(0, 200)}`);
    return r.data;
  };

  const httpError = (what: string, a: Answer) =>
    new LightningBackendError(`phoenixd ${what}: HTTP ${a.status} ${a.text.slice(0, 200)}`);

  const emit = (paymentHash: string) => {
    for (const l of listeners) {
      try {
        l(paymentHash);
      } catch {
        // one listener's bug must not stop the others
      }
    }
  };

  // Push notifications of incoming payments. The mint also polls, so a dead socket only costs latency:
  // every error is swallowed and we reconnect with backoff until close().
  const connect = () => {
    reconnectTimer = undefined;
    if (closed) return;
    const socket = new WebSocket(`${base.replace(/^http/, "ws")}/websocket`, {
      headers: { authorization: auth },
    });
    ws = socket;
    socket.on("open", () => (backoffMs = 1000));
    socket.on("message", (raw) => {
      const event = WsEvent.safeParse(tryJson(raw.toString()));
      if (event.success && event.data.type === "payment_received" && event.data.paymentHash)
        emit(event.data.paymentHash.toLowerCase());
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      if (closed || ws !== socket) return;
      reconnectTimer = setTimeout(connect, backoffMs);
      reconnectTimer.unref();
      backoffMs = Math.min(30_000, backoffMs * 2);
    });
  };

  return {
    name: "phoenixd",

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const a = await read("createinvoice", "/createinvoice", {
        amountSat: String(amountSat),
        description: truncateDescription(description ?? ""),
        expirySeconds: String(expirySeconds),
      });
      if (a.status !== 200) throw httpError("createinvoice", a);
      const body = parse(GeneratedInvoice, a, "createinvoice");
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(body.serialized);
      } catch {
        throw new LightningBackendError(`phoenixd createinvoice: not a bolt11 invoice: ${body.serialized}`);
      }
      // Wallets trust the invoice, not us: make sure it says what we asked for.
      if (d.millisatoshis !== String(amountSat * 1000) || d.tagsObject.payment_hash !== body.paymentHash)
        throw new LightningBackendError(
          "phoenixd createinvoice: invoice amount or payment hash do not match",
        );
      return {
        request: body.serialized,
        paymentHash: body.paymentHash.toLowerCase(),
        expiresAt: d.timeExpireDate ?? Math.floor(Date.now() / 1000) + expirySeconds,
      };
    },

    async invoiceState({ paymentHash, request }): Promise<IncomingState> {
      const a = await read("incoming payment", `/payments/incoming/${paymentHash}`);
      let expired: boolean | undefined;
      if (a.status === 200) {
        const body = parse(IncomingPayment, a, "incoming payment");
        if (body.isPaid) return "PAID";
        expired = body.isExpired ?? undefined;
      } else if (a.status !== 404) {
        throw httpError("incoming payment", a);
      }
      // Older phoenixd has no isExpired, and a 404 means phoenixd never saw it: use the invoice's expiry.
      if (expired === undefined) {
        const expiresAt = bolt11.decode(request).timeExpireDate;
        expired = expiresAt !== undefined && Date.now() / 1000 > expiresAt;
      }
      return expired ? "EXPIRED" : "UNPAID";
    },

    async invoicePreimage({ paymentHash }) {
      const a = await read("incoming payment", `/payments/incoming/${paymentHash}`);
      if (a.status !== 200) return undefined;
      return parse(IncomingPayment, a, "incoming payment").preimage?.toLowerCase() ?? undefined;
    },

    feeReserveSat: (amountMsat) => routingFeeReserveSat(amountMsat, opts),

    async payInvoice(request, amountMsat): Promise<OutgoingResult> {
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(request);
      } catch (err) {
        return { state: "FAILED", reason: `invalid bolt11 invoice: ${(err as Error).message}` };
      }
      const hash = d.tagsObject.payment_hash;
      if (!hash) return { state: "FAILED", reason: "invoice has no payment hash" };
      const form: Record<string, string> = { invoice: request };
      // Only amountless invoices take an amount: an override would pay a different sum than invoiced.
      if (!d.millisatoshis) {
        if (amountMsat % 1000 !== 0) return { state: "FAILED", reason: "phoenixd pays whole sats only" };
        form.amountSat = String(amountMsat / 1000);
      }

      sentAt.set(hash, Date.now());
      let a: Answer;
      try {
        a = await call("/payinvoice", form, PAY_TIMEOUT_MS);
      } catch (err) {
        // The request may have reached phoenixd: never retry blindly, let paymentState find out.
        return { state: "UNKNOWN", reason: `no answer from phoenixd: ${(err as Error).message}` };
      }
      if (a.status === 200) {
        const sent = PaymentSent.safeParse(a.json);
        if (sent.success) {
          sentAt.delete(hash);
          return {
            state: "PAID",
            preimage: sent.data.paymentPreimage.toLowerCase(),
            feeSat: Math.ceil(sent.data.routingFeeSat),
            paymentId: sent.data.paymentId ?? undefined,
          };
        }
        const failed = PaymentFailed.safeParse(a.json);
        if (failed.success) {
          sentAt.delete(hash);
          return { state: "FAILED", reason: failed.data.reason };
        }
        return { state: "UNKNOWN", reason: `unexpected answer from phoenixd: ${a.text.slice(0, 200)}` };
      }
      // 4xx: phoenixd (or a proxy in front) refused the request before paying (bad invoice, auth, ...).
      if (a.status >= 400 && a.status < 500) {
        sentAt.delete(hash);
        return {
          state: "FAILED",
          reason: `phoenixd refused the payment: HTTP ${a.status} ${a.text.slice(0, 200)}`,
        };
      }
      // 5xx and the rest: phoenixd may have failed after it started paying.
      return { state: "UNKNOWN", reason: `phoenixd answered HTTP ${a.status}` };
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      let a: Answer;
      try {
        a = await call(`/payments/outgoingbyhash/${paymentHash}`);
      } catch (err) {
        return { state: "UNKNOWN", reason: `no answer from phoenixd: ${(err as Error).message}` };
      }
      if (a.status === 404) {
        // phoenixd < 0.5.0 has no such endpoint: its 404 for unknown routes says "Unknown endpoint".
        if (/unknown endpoint/i.test(a.text))
          return { state: "UNKNOWN", reason: "phoenixd lacks /payments/outgoingbyhash (needs >= 0.5.0)" };
        // phoenixd records a payment before sending it, so "no payment" means it never left...
        const sent = sentAt.get(paymentHash);
        if (sent !== undefined && Date.now() - sent < IN_FLIGHT_GRACE_MS) return { state: "PENDING" };
        // ...unless our request is still on its way (above).
        return { state: "FAILED", reason: "phoenixd has no payment for this hash" };
      }
      if (a.status !== 200) return { state: "UNKNOWN", reason: `phoenixd answered HTTP ${a.status}` };
      const p = OutgoingPayment.safeParse(a.json);
      if (!p.success)
        return { state: "UNKNOWN", reason: `unexpected answer from phoenixd: ${a.text.slice(0, 200)}` };
      const { isPaid, preimage, fees, completedAt } = p.data;
      const paymentId = p.data.paymentId ?? undefined;
      // phoenixd picks the best attempt for a hash: succeeded, else pending, else failed.
      if (isPaid)
        return {
          state: "PAID",
          preimage: preimage?.toLowerCase(),
          feeSat: Math.ceil((fees ?? 0) / 1000),
          paymentId,
        };
      if (completedAt != null) return { state: "FAILED", reason: "payment failed", paymentId };
      return { state: "PENDING", paymentId };
    },

    onInvoicePaid(listener) {
      listeners.push(listener);
      if (!ws && !closed) connect();
    },

    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      ws?.terminate();
    },
  };
}
