/**
 * phoenixd (the Lightning server the 402ai seed uses) over its HTTP API: Basic auth with an empty
 * user, form-encoded writes, JSON reads. `/payinvoice` is not idempotent, so a payment whose answer
 * was lost is reported UNKNOWN (never retried here); the mint keeps the melt PENDING and later asks
 * `/payments/outgoingbyhash/{hash}`.
 */
import { WebSocket } from "ws";
import * as z from "zod";
import type { CreatedInvoice, IncomingState, LightningBackend, OutgoingResult } from "./types.js";

export class LightningBackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LightningBackendError";
  }
}

export interface PhoenixdOptions {
  url: string;
  password: string;
  feeReserveMinSat?: number;
  /** parts per million of the amount (default 1%) */
  feeReservePpm?: number;
  fetchImpl?: typeof fetch;
}

const CreatedInvoiceBody = z.looseObject({
  paymentHash: z.string().regex(/^[0-9a-f]{64}$/),
  serialized: z.string().min(10),
});
const Incoming = z.looseObject({ isPaid: z.boolean(), isExpired: z.boolean().optional() });
const PaidInvoice = z.looseObject({
  paymentHash: z.string(),
  paymentPreimage: z.string(),
  routingFeeSat: z.number().nonnegative(),
  paymentId: z.string().optional(),
});
const Outgoing = z.looseObject({
  paymentId: z.string().optional(),
  preimage: z.string().nullable().optional(),
  isPaid: z.boolean(),
  fees: z.number().optional(),
  completedAt: z.number().nullable().optional(),
});

export function createPhoenixdLightning(opts: PhoenixdOptions): LightningBackend {
  const base = opts.url.replace(/\/+$/, "");
  const auth = `Basic ${Buffer.from(`:${opts.password}`).toString("base64")}`;
  const doFetch = opts.fetchImpl ?? fetch;
  const listeners: ((hash: string) => void)[] = [];
  let ws: WebSocket | undefined;
  let closed = false;
  let backoff = 1000;

  const call = async (method: "GET" | "POST", path: string, form?: Record<string, string>) => {
    const res = await doFetch(`${base}${path}`, {
      method,
      headers: {
        authorization: auth,
        ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  };

  const parse = <S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> => {
    const r = schema.safeParse(value);
    if (!r.success)
      throw new LightningBackendError(`phoenixd sent an unexpected ${what}: ${r.error.issues[0]?.message}`);
    return r.data;
  };

  // Push notifications of incoming payments; the mint also polls, so a dead socket only costs latency.
  const connect = () => {
    if (closed || listeners.length === 0) return;
    ws = new WebSocket(`${base.replace(/^http/, "ws")}/websocket`, { headers: { authorization: auth } });
    ws.on("open", () => (backoff = 1000));
    ws.on("message", (raw) => {
      try {
        const msg = JSON.parse(raw.toString()) as { type?: string; paymentHash?: string };
        if (msg.type === "payment_received" && typeof msg.paymentHash === "string")
          for (const l of listeners) l(msg.paymentHash);
      } catch {
        // not ours to crash on
      }
    });
    ws.on("error", () => undefined);
    ws.on("close", () => {
      if (closed) return;
      setTimeout(connect, backoff).unref();
      backoff = Math.min(30_000, backoff * 2);
    });
  };

  return {
    name: "phoenixd",

    async createInvoice(amountSat, description, expirySeconds): Promise<CreatedInvoice> {
      const r = await call("POST", "/createinvoice", {
        amountSat: String(amountSat),
        description: description ?? "owlrun",
        expirySeconds: String(expirySeconds),
      });
      if (r.status !== 200)
        throw new LightningBackendError(`phoenixd createinvoice: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      const body = parse(CreatedInvoiceBody, r.json, "invoice");
      return {
        request: body.serialized,
        paymentHash: body.paymentHash,
        expiresAt: Math.floor(Date.now() / 1000) + expirySeconds,
      };
    },

    async invoiceState({ paymentHash }): Promise<IncomingState> {
      const r = await call("GET", `/payments/incoming/${paymentHash}`);
      if (r.status === 404) return "UNPAID";
      if (r.status !== 200) throw new LightningBackendError(`phoenixd incoming payment: HTTP ${r.status}`);
      const body = parse(Incoming, r.json, "incoming payment");
      return body.isPaid ? "PAID" : body.isExpired ? "EXPIRED" : "UNPAID";
    },

    feeReserveSat(amountMsat) {
      const ppm = opts.feeReservePpm ?? 10_000;
      return Math.max(opts.feeReserveMinSat ?? 4, Math.ceil((amountMsat * ppm) / 1e6 / 1000));
    },

    async payInvoice(request): Promise<OutgoingResult> {
      let r: Awaited<ReturnType<typeof call>>;
      try {
        r = await call("POST", "/payinvoice", { invoice: request });
      } catch {
        return { state: "UNKNOWN" }; // the request may have left: never retry blindly
      }
      if (r.status === 200) {
        const parsed = PaidInvoice.safeParse(r.json);
        if (!parsed.success) return { state: "UNKNOWN" };
        return {
          state: "PAID",
          preimage: parsed.data.paymentPreimage,
          feeSat: Math.ceil(parsed.data.routingFeeSat),
          paymentId: parsed.data.paymentId,
        };
      }
      if (r.status >= 400 && r.status < 500)
        return { state: "FAILED", reason: r.text.slice(0, 300) || `HTTP ${r.status}` };
      return { state: "UNKNOWN" };
    },

    async paymentState(paymentHash): Promise<OutgoingResult> {
      let r: Awaited<ReturnType<typeof call>>;
      try {
        r = await call("GET", `/payments/outgoingbyhash/${paymentHash}`);
      } catch {
        return { state: "UNKNOWN" };
      }
      // Asked long after the melt started: phoenixd records a payment before sending it, so none means never sent.
      if (r.status === 404) return { state: "FAILED", reason: "phoenixd has no such payment" };
      if (r.status !== 200) return { state: "UNKNOWN" };
      const p = Outgoing.safeParse(r.json);
      if (!p.success) return { state: "UNKNOWN" };
      if (p.data.isPaid) {
        return {
          state: "PAID",
          preimage: p.data.preimage ?? undefined,
          feeSat: Math.ceil((p.data.fees ?? 0) / 1000),
        };
      }
      return p.data.completedAt ? { state: "FAILED", reason: "payment failed" } : { state: "PENDING" };
    },

    onInvoicePaid(listener) {
      listeners.push(listener);
      if (!ws) connect();
    },

    async close() {
      closed = true;
      ws?.terminate();
    },
  };
}
