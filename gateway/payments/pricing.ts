/**
 * Prices: each model has USD rates per 1M input and output tokens; sats follow from the oracle.
 * Costs are computed in msats (integers) and the ledger's rules (2-sat floor) apply on top.
 */
import { chargeSats } from "../ledger/index.js";

export interface ModelRate {
  per_m_input_usd: number;
  per_m_output_usd: number;
}

/** Owlrun's published rate for small models; used for any model without its own entry. */
export const DEFAULT_RATE: ModelRate = { per_m_input_usd: 0.02, per_m_output_usd: 0.06 };

export class PriceTable {
  /**
   * The least each model sells at (`--upstream` providers' prices): a model an upstream serves is
   * never sold below that upstream's price, whoever serves it, so one model has one price.
   */
  private floors: Record<string, ModelRate> = {};

  constructor(
    private rates: Record<string, ModelRate> = {},
    private fallback: ModelRate = DEFAULT_RATE,
  ) {}

  /** Sets the per-model price floors (kept when the price file is replaced). */
  setFloors(floors: Record<string, ModelRate>): void {
    this.floors = floors;
  }

  /** Swaps in a new price list at once (the operator's price file changed). */
  replace(rates: Record<string, ModelRate>, fallback: ModelRate = DEFAULT_RATE): void {
    this.rates = rates;
    this.fallback = fallback;
  }

  rate(model: string): ModelRate {
    const base = this.rates[model] ?? this.fallback;
    const floor = Object.hasOwn(this.floors, model) ? this.floors[model] : undefined;
    if (!floor) return base;
    return {
      per_m_input_usd: Math.max(base.per_m_input_usd, floor.per_m_input_usd),
      per_m_output_usd: Math.max(base.per_m_output_usd, floor.per_m_output_usd),
    };
  }

  /** msats for the given usage at `btcUsd`, rounded up to a whole msat. */
  costMsat(model: string, promptTokens: number, completionTokens: number, btcUsd: number): number {
    const r = this.rate(model);
    const usd = (promptTokens * r.per_m_input_usd + completionTokens * r.per_m_output_usd) / 1_000_000;
    return Math.ceil((usd / btcUsd) * 1e11);
  }

  /**
   * Whole sats charged for the usage (2-sat floor). The one place a business key's discount is
   * applied: to the cost, before the floor.
   */
  chargeSat(
    model: string,
    promptTokens: number,
    completionTokens: number,
    btcUsd: number,
    discountPct = 0,
  ): number {
    const cost = this.costMsat(model, promptTokens, completionTokens, btcUsd);
    return chargeSats(Math.ceil((cost * (100 - discountPct)) / 100));
  }

  /** Sats per 1M tokens, for the RouteCat pricing shape. */
  satsPerMillion(model: string, btcUsd: number): { input: number; output: number } {
    const r = this.rate(model);
    const toSats = (usd: number) => Math.round((usd / btcUsd) * 1e8 * 1000) / 1000;
    return { input: toSats(r.per_m_input_usd), output: toSats(r.per_m_output_usd) };
  }

  /**
   * The largest completion a budget pays for, given the prompt: used to cap max_tokens to what an
   * X-Cashu token covers.
   */
  affordableCompletionTokens(
    model: string,
    promptTokens: number,
    budgetSat: number,
    btcUsd: number,
    discountPct = 0,
  ): number {
    const r = this.rate(model);
    if (discountPct >= 100) return Number.MAX_SAFE_INTEGER;
    const budgetUsd = (budgetSat * btcUsd * 100) / (100 - discountPct) / 1e8;
    const left = budgetUsd * 1_000_000 - promptTokens * r.per_m_input_usd;
    if (left <= 0) return 0;
    return r.per_m_output_usd > 0 ? Math.floor(left / r.per_m_output_usd) : Number.MAX_SAFE_INTEGER;
  }
}
