/**
 * Core Lightning over `clnrest`: every call is POST /v1/<method> with JSON params and a `Rune`
 * header; errors come back as HTTP 4xx/5xx with `{code, message}` (the JSON-RPC error). Invoices:
 * `invoice`, `listinvoices`. Payments: `pay` (which answers a payment already made with its result
 * instead of paying again, so `listpays` is asked first) and `listpays`. An answer lost or a `pay` still in progress is UNKNOWN;
 * the mint keeps the melt PENDING and asks `listpays` until CLN says complete or failed.
 */
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import bolt11 from "bolt11";
import * as z from "zod";
import { LightningBackendError } from "./errors.js";
import {
  type CreatedInvoice,
  type IncomingState,
  type LightningBackend,
  type OutgoingResult,
  routingFeeReserveSat,
} from "./types.js";

export interface ClnOptions {
  /** clnrest's listener, e.g. https://127.0.0.1:3010 */
  url: string;
  /** a rune allowing invoice, listinvoices, pay and listpays */
  rune: string;
  /** clnrest's certificate (PEM), trusted for this connection only */
  tlsCert?: string;
  /** default 4 sat */
  feeReserveMinSat?: number;
  /** parts per million of the amount (default 10 000 = 1%) */
  feeReservePpm?: number;
}

const READ_TIMEOUT_MS = 30_000;
const PAY_RETRY_SECONDS = 60;
const IN_FLIGHT_GRACE_MS = 120_000;
// `pay` errors after which nothing is in flight: no route, too expensive, expired, gave up.
const FINAL_PAY_ERRORS = new Set([203, 205, 206, 207, 210]);

const Msat = z
  .union([z.number().int().nonnegative(), z.string().regex(/^[0-9]+(msat)?$/)])
  .transform((v) => (typeof v === "number" ? v : Number.parseInt(v, 10)));
const Created = z.looseObject({
  payment_hash: z.string(),
  bolt11: z.string(),
  expires_at: z.number().optional(),
});
const Invoices = z.looseObject({
  invoices: z.array(
    z.looseObject({ status: z.enum(["unpaid", "paid", "expired"]), payment_preimage: z.string().nullish() }),
  ),
});
const PayResult = z.looseObject({
  status: z.enum(["complete", "pending", "failed"]),
  payment_preimage: z.string().nullish(),
  preimage: z.string().nullish(),
  amount_msat: Msat.optional(),
  amount_sent_msat: Msat.optional(),
});
const Pays = z.looseObject({ pays: z.array(PayResult) });
const RpcError = z.looseObject({ code: z.number(), message: z.string() });

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

export function createClnLightning(opts: ClnOptions): LightningBackend {
  const base = new URL(opts.url.replace(/\/+$/, ""));
  const https = base.protocol === "https:";
  const sentAt = new Map<string, number>();

  const call = (method: string, params: Record<string, unknown>, timeoutMs = READ_TIMEOUT_MS) =>
    new Promise<Answer>((resolve, reject) => {
      const payload = JSON.stringify(params);
      const req = (https ? httpsRequest : httpRequest)(
        new URL(`/v1/${method}`, base),
        {
          method: "POST",
          headers: {
            rune: opts.rune,
            accept: "application/json",
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
          },
          ...(https && opts.tlsCert ? { ca: opts.tlsCert } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, text, json });
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    });

  const read = async <S extends z.ZodType>(schema: S, method: string, params: Record<string, unknown>) => {
    let a: Answer;
    try {
      a = await call(method, params);
    } catch (err) {
      throw new LightningBackendError(`cln ${method}: ${(err as Error).message}`, { cause: err });
    }
    if (a.status !== 200 && a.status !== 201)
      throw new LightningBackendError(`cln ${method}: HTTP ${a.status} ${a.text.slice(0, 200)}`);
    const r = schema.safeParse(a.json);
    if (!r.success)
      throw new LightningBackendError(`cln ${method}: unexpected answer ${a.text.slice(0, 200)}`);
    return r.data as z.infer<S>;
  };

  const outcome = (p: z.infer<typeof PayResult>): OutgoingResult => {
    if (p.status === "complete") {
      const fee = (p.amount_sent_msat ?? 0) - (p.amount_msat ?? p.amount_sent_msat ?? 0);
      return {
        state: "PAID",
        preimage: (p.payment_preimage ?? p.preimage)?.toLowerCase() ?? undefined,
        feeSat: Math.ceil(Math.max(0, fee) / 1000),
      };
    }
    if (p.status === "failed") return { state: "FAILED", reason: "payment failed" };
    return { state: "PENDING" };
  };

  const invoice = async (paymentHash: string) =>
    (await read(Invoices, "listinvoices", { payment_hash: paymentHash })).invoices[0];

  return {
    name: "cln",

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const body = await read(Created, "invoice", {
        amount_msat: amountSat * 1000,
        label: `owlrun-${randomUUID()}`,
        description: description ?? "",
        expiry: expirySeconds,
      });
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(body.bolt11);
      } catch {
        throw new LightningBackendError(`cln invoice: not a bolt11 invoice: ${body.bolt11}`);
      }
      // Wallets trust the invoice, not us: make sure it says what we asked for.
      if (d.millisatoshis !== String(amountSat * 1000) || d.tagsObject.payment_hash !== body.payment_hash)
        throw new LightningBackendError("cln invoice: invoice amount or payment hash do not match");
      return {
        request: body.bolt11,
        paymentHash: body.payment_hash.toLowerCase(),
        expiresAt: body.expires_at ?? d.timeExpireDate ?? Math.floor(Date.now() / 1000) + expirySeconds,
      };
    },

    async invoiceState({ paymentHash }): Promise<IncomingState> {
      const inv = await invoice(paymentHash);
      if (!inv) throw new LightningBackendError(`cln listinvoices: no invoice ${paymentHash}`);
      return inv.status === "paid" ? "PAID" : inv.status === "expired" ? "EXPIRED" : "UNPAID";
    },

    async invoicePreimage({ paymentHash }) {
      const inv = await invoice(paymentHash);
      return inv?.status === "paid" ? (inv.payment_preimage?.toLowerCase() ?? undefined) : undefined;
    },

    feeReserveSat: (amountMsat) => routingFeeReserveSat(amountMsat, opts),

    async payInvoice(request, amountMsat, maxFeeSat): Promise<OutgoingResult> {
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(request);
      } catch (err) {
        return { state: "FAILED", reason: `invalid bolt11 invoice: ${(err as Error).message}` };
      }
      const params: Record<string, unknown> = {
        bolt11: request,
        maxfee: maxFeeSat * 1000,
        retry_for: PAY_RETRY_SECONDS,
      };
      // Only amountless invoices take an amount: an override would pay a different sum than invoiced.
      if (!d.millisatoshis) params.amount_msat = amountMsat;
      const hash = d.tagsObject.payment_hash;
      if (!hash) return { state: "FAILED", reason: "invoice has no payment hash" };
      // CLN's `pay` answers an invoice it already paid with the old result: a second melt of the
      // same invoice would then count as paid without paying. Refuse it first.
      try {
        const earlier = (await read(Pays, "listpays", { payment_hash: hash })).pays;
        if (earlier.some((p) => p.status !== "failed"))
          return { state: "FAILED", reason: "invoice already paid (or being paid) by this node" };
      } catch (err) {
        return { state: "FAILED", reason: `cln unreachable before paying: ${(err as Error).message}` };
      }
      sentAt.set(hash, Date.now());
      let a: Answer;
      try {
        a = await call("pay", params, (PAY_RETRY_SECONDS + 60) * 1000);
      } catch (err) {
        // The request may have reached CLN: never retry blindly, let paymentState find out.
        return { state: "UNKNOWN", reason: `no answer from cln: ${(err as Error).message}` };
      }
      if (a.status === 200 || a.status === 201) {
        const r = PayResult.safeParse(a.json);
        if (r.success) {
          const o = outcome(r.data);
          return o.state === "PENDING" ? { state: "UNKNOWN", reason: "cln: payment still pending" } : o;
        }
        return { state: "UNKNOWN", reason: `unexpected answer from cln: ${a.text.slice(0, 200)}` };
      }
      const e = RpcError.safeParse(a.json);
      if (e.success && FINAL_PAY_ERRORS.has(e.data.code))
        return { state: "FAILED", reason: `cln: ${e.data.message}` };
      // Unauthorised or malformed before CLN ran `pay`: nothing left.
      if (a.status === 401 || a.status === 403 || (e.success && e.data.code === -32602))
        return { state: "FAILED", reason: `cln refused the payment: ${a.text.slice(0, 200)}` };
      return { state: "UNKNOWN", reason: `cln answered HTTP ${a.status}: ${a.text.slice(0, 200)}` };
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      let pays: z.infer<typeof Pays>["pays"];
      try {
        pays = (await read(Pays, "listpays", { payment_hash: paymentHash })).pays;
      } catch (err) {
        return { state: "UNKNOWN", reason: (err as Error).message };
      }
      // Several attempts may exist for one hash: one complete wins, any pending keeps it open.
      const done = pays.find((p) => p.status === "complete");
      if (done) return outcome(done);
      if (pays.some((p) => p.status === "pending")) return { state: "PENDING" };
      if (pays.length > 0) return { state: "FAILED", reason: "payment failed" };
      const sent = sentAt.get(paymentHash);
      if (sent !== undefined && Date.now() - sent < IN_FLIGHT_GRACE_MS) return { state: "PENDING" };
      return { state: "FAILED", reason: "cln has no payment for this hash" };
    },

    async close() {},
  };
}
