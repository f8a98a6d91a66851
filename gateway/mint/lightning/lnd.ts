/**
 * LND over its REST API: macaroon in `Grpc-Metadata-macaroon` (hex), TLS with LND's own certificate
 * (`tlsCert`, PEM). Invoices: POST /v1/invoices, GET /v1/invoice/{hash}. Payments:
 * POST /v2/router/send (a stream of JSON lines; we ask for the final state only) and
 * GET /v2/router/track/{hash}, whose first line is the payment's current state.
 * A payment whose answer was lost is UNKNOWN, never sent again: LND refuses a second payment of a
 * hash anyway, and the mint asks `paymentState` until LND says PAID or FAILED.
 */
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

export interface LndOptions {
  /** LND's REST listener, e.g. https://127.0.0.1:8080 */
  url: string;
  /** admin (or invoice + offchain) macaroon, hex */
  macaroon: string;
  /** LND's tls.cert (PEM), trusted for this connection only */
  tlsCert?: string;
  /** default 4 sat */
  feeReserveMinSat?: number;
  /** parts per million of the amount (default 10 000 = 1%) */
  feeReservePpm?: number;
}

const READ_TIMEOUT_MS = 30_000;
const PAY_TIMEOUT_SECONDS = 60;
// A payment this instance sent that LND has not recorded yet is still on its way, not failed.
const IN_FLIGHT_GRACE_MS = 120_000;

const b64hex = (s: string) => Buffer.from(s, "base64").toString("hex");
const Int64 = z.union([z.string().regex(/^[0-9]+$/), z.number().int().nonnegative()]).transform(Number);

const AddInvoice = z.looseObject({ r_hash: z.string().min(1), payment_request: z.string().min(1) });
const Invoice = z.looseObject({
  state: z.enum(["OPEN", "SETTLED", "CANCELED", "ACCEPTED"]),
  r_preimage: z.string().nullish(),
});
const Payment = z.looseObject({
  payment_hash: z.string().optional(),
  payment_preimage: z.string().nullish(),
  status: z.enum(["UNKNOWN", "IN_FLIGHT", "SUCCEEDED", "FAILED", "INITIATED"]),
  fee_msat: Int64.optional(),
  failure_reason: z.string().nullish(),
});
const StreamLine = z.looseObject({
  result: Payment.optional(),
  error: z.looseObject({ message: z.string().optional(), code: z.number().optional() }).optional(),
});

interface Answer {
  status: number;
  text: string;
}

/** LND's error text, from a stream line `{error: {message}}` or a plain `{message}` answer. */
function errorText(json: unknown, fallback: string): string {
  const j = json as { error?: { message?: unknown }; message?: unknown } | undefined;
  const m = j?.error?.message ?? j?.message;
  return typeof m === "string" ? m : fallback.slice(0, 200);
}

/** The first JSON line of a (possibly streaming) answer. */
function firstLine(text: string): unknown {
  const line = text.split("\n").find((l) => l.trim().length > 0) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return undefined;
  }
}

export function createLndLightning(opts: LndOptions): LightningBackend {
  const base = new URL(opts.url.replace(/\/+$/, ""));
  const https = base.protocol === "https:";
  const sentAt = new Map<string, number>(); // payment hash -> when this instance asked LND to pay it

  /**
   * One request. `untilFirstLine` ends a streaming answer after its first JSON line (track). Throws
   * on network errors and timeouts; callers decide what that means.
   */
  const call = (
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    timeoutMs = READ_TIMEOUT_MS,
    untilFirstLine = false,
  ) =>
    new Promise<Answer>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = (https ? httpsRequest : httpRequest)(
        new URL(path, base),
        {
          method,
          headers: {
            "grpc-metadata-macaroon": opts.macaroon,
            accept: "application/json",
            ...(payload
              ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }
              : {}),
          },
          ...(https && opts.tlsCert ? { ca: opts.tlsCert } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            text += chunk;
            if (untilFirstLine && text.includes("\n") && firstLine(text) !== undefined) {
              resolve({ status: res.statusCode ?? 0, text });
              req.destroy();
            }
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(payload);
    });

  const read = async (what: string, method: "GET" | "POST", path: string, body?: unknown) => {
    let a: Answer;
    try {
      a = await call(method, path, body);
    } catch (err) {
      throw new LightningBackendError(`lnd ${what}: ${(err as Error).message}`, { cause: err });
    }
    if (a.status !== 200)
      throw new LightningBackendError(`lnd ${what}: HTTP ${a.status} ${a.text.slice(0, 200)}`);
    return a;
  };

  const parse = <S extends z.ZodType>(schema: S, a: Answer, what: string): z.infer<S> => {
    const r = schema.safeParse(firstLine(a.text));
    if (!r.success) throw new LightningBackendError(`lnd ${what}: unexpected answer ${a.text.slice(0, 200)}`);
    return r.data;
  };

  /** An LND payment record as our outcome. */
  const outcome = (p: z.infer<typeof Payment>): OutgoingResult => {
    if (p.status === "SUCCEEDED")
      return {
        state: "PAID",
        preimage: p.payment_preimage?.toLowerCase() ?? undefined,
        feeSat: Math.ceil((p.fee_msat ?? 0) / 1000),
      };
    if (p.status === "FAILED") return { state: "FAILED", reason: p.failure_reason ?? "payment failed" };
    return { state: "PENDING" };
  };

  return {
    name: "lnd",

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const a = await read("addinvoice", "POST", "/v1/invoices", {
        value: String(amountSat),
        memo: description ?? "",
        expiry: String(expirySeconds),
      });
      const body = parse(AddInvoice, a, "addinvoice");
      const paymentHash = b64hex(body.r_hash);
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(body.payment_request);
      } catch {
        throw new LightningBackendError(`lnd addinvoice: not a bolt11 invoice: ${body.payment_request}`);
      }
      // Wallets trust the invoice, not us: make sure it says what we asked for.
      if (d.millisatoshis !== String(amountSat * 1000) || d.tagsObject.payment_hash !== paymentHash)
        throw new LightningBackendError("lnd addinvoice: invoice amount or payment hash do not match");
      return {
        request: body.payment_request,
        paymentHash,
        expiresAt: d.timeExpireDate ?? Math.floor(Date.now() / 1000) + expirySeconds,
      };
    },

    async invoiceState({ paymentHash }): Promise<IncomingState> {
      const inv = parse(
        Invoice,
        await read("lookupinvoice", "GET", `/v1/invoice/${paymentHash}`),
        "lookupinvoice",
      );
      if (inv.state === "SETTLED") return "PAID";
      return inv.state === "CANCELED" ? "EXPIRED" : "UNPAID";
    },

    async invoicePreimage({ paymentHash }) {
      const inv = parse(
        Invoice,
        await read("lookupinvoice", "GET", `/v1/invoice/${paymentHash}`),
        "lookupinvoice",
      );
      return inv.state === "SETTLED" && inv.r_preimage ? b64hex(inv.r_preimage) : undefined;
    },

    feeReserveSat: (amountMsat) => routingFeeReserveSat(amountMsat, opts),

    async payInvoice(request, amountMsat, maxFeeSat): Promise<OutgoingResult> {
      let d: ReturnType<typeof bolt11.decode>;
      try {
        d = bolt11.decode(request);
      } catch (err) {
        return { state: "FAILED", reason: `invalid bolt11 invoice: ${(err as Error).message}` };
      }
      const body: Record<string, unknown> = {
        payment_request: request,
        timeout_seconds: PAY_TIMEOUT_SECONDS,
        fee_limit_sat: String(maxFeeSat),
        no_inflight_updates: true,
      };
      // Only amountless invoices take an amount: an override would pay a different sum than invoiced.
      if (!d.millisatoshis) body.amt_msat = String(amountMsat);
      const hash = d.tagsObject.payment_hash;
      if (hash) sentAt.set(hash, Date.now());
      let a: Answer;
      try {
        a = await call("POST", "/v2/router/send", body, (PAY_TIMEOUT_SECONDS + 30) * 1000);
      } catch (err) {
        // The request may have reached LND: never retry blindly, let paymentState find out.
        return { state: "UNKNOWN", reason: `no answer from lnd: ${(err as Error).message}` };
      }
      const lines = a.text.split("\n").filter((l) => l.trim());
      let lastJson: unknown;
      try {
        lastJson = lines.length ? JSON.parse(lines.at(-1)!) : undefined;
      } catch {
        lastJson = undefined;
      }
      const last = StreamLine.safeParse(lastJson);
      if (a.status === 200 && last.success && last.data.result) return outcome(last.data.result);
      const message = errorText(lastJson, a.text);
      // Refused before paying: a bad or already paid invoice, auth. Anything else may have left.
      if ((a.status >= 400 && a.status < 500) || /already paid|invoice expired|invalid/i.test(message))
        return { state: "FAILED", reason: `lnd refused the payment: ${message}` };
      return { state: "UNKNOWN", reason: `lnd answered HTTP ${a.status}: ${message}` };
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      let a: Answer;
      try {
        a = await call("GET", `/v2/router/track/${paymentHash}`, undefined, READ_TIMEOUT_MS, true);
      } catch (err) {
        return { state: "UNKNOWN", reason: `no answer from lnd: ${(err as Error).message}` };
      }
      const json = firstLine(a.text);
      const line = StreamLine.safeParse(json);
      if (a.status === 200 && line.success && line.data.result) return outcome(line.data.result);
      const message = errorText(json, a.text);
      // LND records a payment before it sends any HTLC: never initiated means it never left...
      if (/not initiated|isn't initiated|not found/i.test(message)) {
        // ...unless our own request is still on its way to LND.
        const sent = sentAt.get(paymentHash);
        if (sent !== undefined && Date.now() - sent < IN_FLIGHT_GRACE_MS) return { state: "PENDING" };
        return { state: "FAILED", reason: "lnd has no payment for this hash" };
      }
      return { state: "UNKNOWN", reason: `lnd answered HTTP ${a.status}: ${message}` };
    },

    async close() {},
  };
}
