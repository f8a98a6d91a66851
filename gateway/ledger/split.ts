/**
 * The money rules of ARCHITECTURE.md §4 in one place: what a job costs in whole sats and how the
 * charge is split between the provider and the gateway.
 */
export const MIN_CHARGE_SAT = 2;
export const MIN_PROVIDER_SHARE_PCT = 90;
export const DEFAULT_PROVIDER_SHARE_PCT = 95;

/** Charged = max(2 sats, ceil(cost)); cost arrives in msats (may be fractional sats). */
export function chargeSats(costMsat: number): number {
  return Math.max(MIN_CHARGE_SAT, Math.ceil(costMsat / 1000));
}

export interface Split {
  providerMsat: number;
  gatewayMsat: number;
}

/**
 * Provider gets pct% (≥ 90, at least 1 sat), the gateway the rest; the two always add up to the
 * charge. The 2-sat floor is the exception the Owlrun seed names: 1 sat to each.
 */
export function splitCharge(chargedMsat: number, providerSharePct: number): Split {
  if (providerSharePct < MIN_PROVIDER_SHARE_PCT || providerSharePct > 100) {
    throw new RangeError(`provider share must be ${MIN_PROVIDER_SHARE_PCT}..100%, got ${providerSharePct}`);
  }
  if (chargedMsat === MIN_CHARGE_SAT * 1000) return { providerMsat: 1000, gatewayMsat: chargedMsat - 1000 };
  const providerMsat = Math.min(
    chargedMsat,
    Math.max(1000, Math.floor((chargedMsat * providerSharePct) / 100)),
  );
  return { providerMsat, gatewayMsat: chargedMsat - providerMsat };
}
