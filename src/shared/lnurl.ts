/**
 * Lightning addresses (LUD-16) → bolt11 invoices through LNURL-pay (LUD-06). Checks what a payer
 * must check: the invoice amount equals the requested msats, and only https (loopback http in
 * tests and local networks) and no private or link-local hosts, so a payout address cannot be
 * used to reach internal services.
 */
import { createHash } from "node:crypto";
import bolt11 from "bolt11";
import * as z from "zod";
import { AppError } from "./errors.js";

export class LnurlError extends AppError {
  constructor(message: string) {
    super(message, "invalid_lightning_address", 400);
  }
}

export const LIGHTNING_ADDRESS = /^[a-z0-9._+-]{1,64}@[a-z0-9.-]{1,253}(:\d{1,5})?$/i;

const PayRequest = z.object({
  tag: z.literal("payRequest"),
  callback: z.string().url(),
  minSendable: z.number().int().nonnegative(),
  maxSendable: z.number().int().positive(),
  metadata: z.string(),
});
const Invoice = z.object({ pr: z.string().min(10) });

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function isPrivate(host: string): boolean {
  return (
    /^10\./.test(host) ||
    /^192\.168\./.test(host) ||
    /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
    /^169\.254\./.test(host) ||
    /^0\./.test(host) ||
    /^\[?f[cd]/i.test(host) ||
    /^\[?fe80/i.test(host)
  );
}

function checkUrl(raw: string, allowLoopbackHttp: boolean): URL {
  const url = new URL(raw);
  const host = url.hostname;
  if (isPrivate(host)) throw new LnurlError(`refusing private address ${host}`);
  if (url.protocol === "https:") return url;
  if (url.protocol === "http:" && allowLoopbackHttp && isLoopback(host)) return url;
  throw new LnurlError(`LNURL endpoints must use https (got ${url.protocol}//${host})`);
}

export interface ResolveOptions {
  /** tests and local networks: allow http://127.0.0.1:<port> */
  allowLoopbackHttp?: boolean;
  fetchImpl?: typeof fetch;
}

/** Asks the address's LNURL-pay server for an invoice of exactly `amountSat`. */
export async function invoiceForLightningAddress(
  address: string,
  amountSat: number,
  opts: ResolveOptions = {},
): Promise<string> {
  if (!LIGHTNING_ADDRESS.test(address)) throw new LnurlError(`not a lightning address: ${address}`);
  const [name, domain] = address.split("@") as [string, string];
  const loopback = isLoopback(domain.split(":")[0]!);
  const scheme = loopback && opts.allowLoopbackHttp ? "http" : "https";
  const doFetch = opts.fetchImpl ?? fetch;
  const get = async (url: URL) => {
    const res = await doFetch(url, { signal: AbortSignal.timeout(10_000), redirect: "error" });
    if (!res.ok) throw new LnurlError(`${url.host} answered HTTP ${res.status}`);
    return res.json();
  };
  const info = PayRequest.safeParse(
    await get(checkUrl(`${scheme}://${domain}/.well-known/lnurlp/${name}`, !!opts.allowLoopbackHttp)),
  );
  if (!info.success) throw new LnurlError(`${domain} did not answer with an LNURL payRequest`);
  const msat = amountSat * 1000;
  if (msat < info.data.minSendable || msat > info.data.maxSendable) {
    throw new LnurlError(
      `${address} accepts ${info.data.minSendable / 1000}..${info.data.maxSendable / 1000} sats`,
    );
  }
  const callback = checkUrl(info.data.callback, !!opts.allowLoopbackHttp);
  callback.searchParams.set("amount", String(msat));
  const inv = Invoice.safeParse(await get(callback));
  if (!inv.success) throw new LnurlError(`${domain} did not return an invoice`);
  const decoded = bolt11.decode(inv.data.pr);
  if (Number(decoded.millisatoshis) !== msat)
    throw new LnurlError("the invoice amount does not match the request");
  const hashTag = decoded.tags.find((t) => t.tagName === "purpose_commit_hash")?.data;
  const expected = createHash("sha256").update(info.data.metadata).digest("hex");
  if (hashTag !== undefined && hashTag !== expected)
    throw new LnurlError("the invoice description hash does not match the metadata");
  return inv.data.pr;
}
