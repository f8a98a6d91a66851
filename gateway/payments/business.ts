/**
 * Business keys (BSVAPI "For businesses"): their tiers and discounts, how new keys are named, and
 * the credit limit that makes one metered (used with no payment header, billed monthly).
 */
import { randomBytes } from "node:crypto";

/** Business tiers (BSVAPI): usage metered to the key at a discount. */
export const BUSINESS_TIERS = ["internal", "partner", "external"] as const;
export type BusinessTier = (typeof BUSINESS_TIERS)[number];
export const DEFAULT_TIER_DISCOUNT_PCT: Record<BusinessTier, number> = {
  internal: 50,
  partner: 25,
  external: 0,
};

/**
 * A new business key as BSVAPI names them (`bsvapi_sk_yourcompany_xxx`): the company's name folded
 * to [a-z0-9_] (at most 24 characters) when there is one. Keys are found by their hash, so the
 * older `rc_` business keys keep working.
 */
export function newBusinessKey(name: string | null): string {
  const slug = (name ?? "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 24)
    .replace(/_+$/, "");
  return `${slug ? `bsvapi_sk_${slug}_` : "bsvapi_sk_"}${randomBytes(24).toString("base64url")}`;
}

/** The largest credit limit an operator may set (sats): 21 000 BTC, still exact as msats in a JS number. */
export const MAX_CREDIT_LIMIT_SAT = 2_100_000_000_000;

/** A credit limit is a whole number of sats in [0, MAX_CREDIT_LIMIT_SAT]. */
export function checkCreditLimit(sats: number): void {
  if (!Number.isSafeInteger(sats) || sats < 0 || sats > MAX_CREDIT_LIMIT_SAT)
    throw new RangeError(`credit limit must be a whole number of sats from 0 to ${MAX_CREDIT_LIMIT_SAT}`);
}
