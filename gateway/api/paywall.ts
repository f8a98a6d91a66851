/**
 * How a paid route is paid: which credential a request carries, and the 402 challenge for one that
 * carries none — L402 (`WWW-Authenticate`), NUT-24 (`X-Cashu: creqA…`, a Cashu payment request for
 * the gateway's mints) and BSV (`x-bsv-payment-satoshis-required`), each when enabled, for the
 * same conservative estimate (input + requested or default max tokens).
 */
import { randomUUID } from "node:crypto";
import { PaymentRequest } from "@cashu/cashu-ts";
import type { Request } from "express";
import * as z from "zod";
import type { Logger } from "../../src/shared/index.js";
import type { BsvPayments } from "../payments/bsv.js";
import { type L402Payments, parseL402Authorization } from "../payments/l402.js";
import type { RateLimiter } from "../payments/ratelimit.js";
import type { GatewayWallet } from "../payments/wallet.js";
import { bearerKey } from "./accounts.js";
import { ApiError } from "./errors.js";

export const PAYMENT_METHODS = ["xcashu", "accounts", "l402", "bsv"] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];
export const PaymentMethodsSchema = z.array(z.enum(PAYMENT_METHODS)).min(1);

/** The JSON body of a 402 challenge (the same data as its headers). */
export const PaymentChallengeSchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.literal("payment_required"),
    code: z.literal(402),
    amount_sats: z.number().int().positive(),
    l402: z.object({ macaroon: z.string(), invoice: z.string(), payment_hash: z.string() }).optional(),
    cashu_request: z.string().optional(),
    bsv: z.object({ satoshis_required: z.number().int().positive(), address: z.string() }).optional(),
  }),
});

export type Credential =
  | { kind: "xcashu"; token: string }
  | { kind: "bearer"; key: string }
  | { kind: "l402"; macaroon: string; preimage: string }
  | { kind: "bsv"; txid: string }
  | { kind: "none" };

export interface Paywall {
  methods: ReadonlySet<PaymentMethod>;
  l402: L402Payments;
  bsv?: BsvPayments;
  bsvAddress?: string;
  wallet: GatewayWallet;
  /** unpaid requests (each one a mint quote and a row) per client address */
  challenges: RateLimiter;
  challengesPerMinute: number;
  log: Logger;
}

/**
 * Who is asking, for per-address limits: the peer address (no proxy headers are trusted), an IPv6
 * client by its /64 (one host usually holds the whole prefix).
 */
export function clientAddress(req: Request): string {
  const ip = (req.socket.remoteAddress ?? "unknown").replace(/^::ffff:(?=\d+\.)/, "");
  if (!ip.includes(":")) return ip;
  const [head = "", tail] = ip.split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups.slice(0, 4).join(":")}::/64`;
}

/** The credential a request pays with; kinds the gateway does not accept count as none. */
export function readCredential(req: Request, methods: ReadonlySet<PaymentMethod>): Credential {
  const cashu = req.get("x-cashu");
  if (cashu && methods.has("xcashu")) return { kind: "xcashu", token: cashu };
  const authorization = req.get("authorization");
  const l402 = parseL402Authorization(authorization);
  if (l402 && methods.has("l402")) return { kind: "l402", ...l402 };
  const txid = req.get("x-bsv-payment");
  if (txid && methods.has("bsv")) return { kind: "bsv", txid };
  const bearer = bearerKey(req);
  if (bearer && methods.has("accounts")) return { kind: "bearer", key: bearer };
  return { kind: "none" };
}

/** A NUT-18 payment request (`creqA…`) for `amountSat` from the gateway's mints (NUT-24). */
export function cashuPaymentRequest(pw: Pick<Paywall, "wallet">, route: string, amountSat: number): string {
  return new PaymentRequest(
    undefined,
    randomUUID().slice(0, 8),
    amountSat,
    "sat",
    pw.wallet.trustedMints,
    `owlrun ${route}`,
    true,
  ).toEncodedCreqA();
}

/**
 * The 402 for a request to `route` that would cost `amountSat`, with every enabled way to pay.
 * Each challenge costs a mint quote, so `client` (its address) gets a bounded number per minute: 429.
 */
export async function paymentChallenge(
  pw: Paywall,
  route: string,
  amountSat: number,
  client: string,
): Promise<ApiError> {
  pw.challenges.enforce(client, `${pw.challengesPerMinute} unpaid requests per minute from one address`);
  const headers: Record<string, string> = {};
  const extra: Record<string, unknown> = { amount_sats: amountSat };
  const ways: string[] = [];
  if (pw.methods.has("l402")) {
    try {
      const c = await pw.l402.challenge(route, amountSat);
      headers["WWW-Authenticate"] = c.header;
      extra.l402 = { macaroon: c.macaroon, invoice: c.invoice, payment_hash: c.paymentHash };
      ways.push("pay the L402 invoice and retry with Authorization: L402 <macaroon>:<preimage>");
    } catch (err) {
      // The mint being down must not hide the other ways to pay.
      pw.log.warn("no L402 invoice for the challenge", { err: String(err) });
    }
  }
  if (pw.methods.has("xcashu")) {
    const request = cashuPaymentRequest(pw, route, amountSat);
    headers["X-Cashu"] = request;
    extra.cashu_request = request;
    ways.push("retry with X-Cashu: <cashu token> (NUT-24)");
  }
  if (pw.bsv && pw.bsvAddress) {
    const satoshis = pw.bsv.required(amountSat);
    headers["x-bsv-payment-satoshis-required"] = String(satoshis);
    extra.bsv = { satoshis_required: satoshis, address: pw.bsvAddress };
    ways.push(`pay ${satoshis} BSV satoshis to ${pw.bsvAddress} and retry with x-bsv-payment: <txid>`);
  }
  if (pw.methods.has("accounts")) ways.push("use an API key as Authorization: Bearer");
  return new ApiError(
    402,
    "payment_required",
    `payment required: ${amountSat} sats. ${ways.join("; or ")}`,
    headers,
    extra,
  );
}
