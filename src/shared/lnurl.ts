/**
 * Lightning addresses (LUD-16) → bolt11 invoices through LNURL-pay (LUD-06). Checks what a payer
 * must check: the invoice amount equals the requested msats, and only https to public addresses
 * (netguard.ts: every resolved address and every redirect is checked, and the socket connects to
 * the checked address), so a payout address cannot reach the gateway's own network. Loopback http
 * only for tests and the devnet.
 */
import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import bolt11 from "bolt11";
import * as z from "zod";
import { AppError } from "./errors.js";
import { BlockedAddressError, guardedLookup, staticHostProblem } from "./netguard.js";

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

const MAX_REDIRECTS = 3;
const MAX_BODY_BYTES = 64 * 1024;

/** The URL, if its scheme and host may be dialled: https to a public host (http to loopback when allowed). */
function checkUrl(raw: string, allowLoopbackHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LnurlError(`not a URL: ${raw.slice(0, 100)}`);
  }
  const host = url.hostname;
  const problem = staticHostProblem(host, allowLoopbackHttp);
  if (problem) throw new LnurlError(`refusing ${problem}`);
  if (url.protocol === "https:") return url;
  if (url.protocol === "http:" && allowLoopbackHttp && staticHostProblem(host, false) !== undefined)
    return url;
  throw new LnurlError(`LNURL endpoints must use https (got ${url.protocol}//${host})`);
}

/**
 * GET a JSON document from an LNURL server: the connection goes only to checked addresses
 * (guardedLookup), each redirect is checked like the first URL, the body is bounded.
 */
async function getJson(first: URL, allowLoopback: boolean): Promise<unknown> {
  let url = first;
  for (let hop = 0; ; hop++) {
    const res = await new Promise<{ status: number; location?: string; body: string }>((resolve, reject) => {
      const req = (url.protocol === "https:" ? httpsRequest : httpRequest)(
        url,
        {
          method: "GET",
          lookup: guardedLookup(allowLoopback),
          headers: { accept: "application/json" },
          timeout: 10_000,
        },
        (r) => {
          let size = 0;
          const chunks: Buffer[] = [];
          r.on("data", (d: Buffer) => {
            size += d.length;
            if (size > MAX_BODY_BYTES)
              return req.destroy(new LnurlError(`${url.host} answered more than 64 KiB`));
            chunks.push(d);
          });
          r.on("end", () =>
            resolve({
              status: r.statusCode ?? 0,
              location: r.headers.location,
              body: Buffer.concat(chunks).toString("utf8"),
            }),
          );
          r.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new LnurlError(`${url.host} did not answer in time`)));
      req.on("error", (err) =>
        reject(err instanceof BlockedAddressError ? new LnurlError(`refusing ${err.message}`) : err),
      );
      req.end();
    });
    if (res.status >= 300 && res.status < 400 && res.location) {
      if (hop >= MAX_REDIRECTS) throw new LnurlError(`${first.host} redirected too often`);
      url = checkUrl(new URL(res.location, url).toString(), allowLoopback);
      continue;
    }
    if (res.status < 200 || res.status >= 300)
      throw new LnurlError(`${url.host} answered HTTP ${res.status}`);
    try {
      return JSON.parse(res.body);
    } catch {
      throw new LnurlError(`${url.host} did not answer JSON`);
    }
  }
}

/**
 * Why a Lightning address may not be paid to (not one, or its host is this machine or a private
 * network), or undefined. Provider registration uses it; payouts check resolved addresses too.
 */
export function lightningAddressProblem(address: string, allowLoopback = false): string | undefined {
  if (!LIGHTNING_ADDRESS.test(address)) return `not a lightning address: ${address}`;
  const host = address.split("@")[1]!.replace(/:\d+$/, "");
  const problem = staticHostProblem(host, allowLoopback);
  return problem ? `lightning address ${address}: ${problem}; payouts go only to public hosts` : undefined;
}

export interface ResolveOptions {
  /** tests and the devnet: allow http:// to loopback hosts (never private networks) */
  allowLoopbackHttp?: boolean;
}

/** Asks the address's LNURL-pay server for an invoice of exactly `amountSat`. */
export async function invoiceForLightningAddress(
  address: string,
  amountSat: number,
  opts: ResolveOptions = {},
): Promise<string> {
  if (!LIGHTNING_ADDRESS.test(address)) throw new LnurlError(`not a lightning address: ${address}`);
  const [name, domain] = address.split("@") as [string, string];
  const allow = !!opts.allowLoopbackHttp;
  const problem = lightningAddressProblem(address, allow);
  if (problem) throw new LnurlError(problem);
  const loopback = staticHostProblem(domain.replace(/:\d+$/, ""), false) !== undefined;
  const scheme = loopback && allow ? "http" : "https";
  const get = (url: URL) => getJson(url, allow);
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
