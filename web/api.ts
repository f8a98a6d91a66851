/** The gateway's public routes the page reads (same origin): info, models, rate, stats, price. */

export interface ModelInfo {
  id: string;
  pricing: { per_m_input_usd: number; per_m_output_usd: number };
  routecat_pricing?: { input_per_1m_tokens_sats: number; output_per_1m_tokens_sats: number };
}

export interface Stats {
  nodes_online: number;
  jobs_24h: number;
  tokens_24h: number;
  btc_usd: number;
}

export interface ChatMessage {
  role: "user" | "assistant" | "system";
  content: string;
}

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly type: string,
  ) {
    super(message);
  }
}

/** Reads the `{"error":{message,type}}` body of a failed response. */
export async function failure(res: Response): Promise<ApiFailure> {
  const body = (await res.json().catch(() => ({}))) as { error?: { message?: string; type?: string } };
  return new ApiFailure(
    body.error?.message ?? `HTTP ${res.status}`,
    res.status,
    body.error?.type ?? "http_error",
  );
}

async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export const api = {
  info: () => getJson<{ mints: string[]; min_charge_sats: number }>("/v1/info"),
  models: () => getJson<{ data: ModelInfo[] }>("/v1/models").then((r) => r.data),
  stats: () => getJson<Stats>("/v1/stats"),
  rate: () => getJson<{ pricing_rate: number }>("/v1/oracle/rate"),
};

/** The gateway's own prompt size estimate (≈ 1 token per 3 characters of the messages' JSON). */
export function estimatePromptTokens(messages: ChatMessage[]): number {
  return Math.ceil(JSON.stringify(messages).length / 3) + 8;
}

/**
 * The most a prompt can cost: `POST /v1/price` when the gateway has it, else the gateway's own
 * formula over `/v1/models` prices and `max_tokens` (2-sat floor, sats rounded up).
 */
export async function maxCostSats(
  model: ModelInfo,
  messages: ChatMessage[],
  maxTokens: number,
  minCharge: number,
): Promise<number> {
  const res = await fetch("/v1/price", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: model.id, messages, max_tokens: maxTokens }),
  }).catch(() => undefined);
  if (res?.ok) {
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    const sats = body.max_sats ?? body.max_cost_sats ?? body.sats;
    if (typeof sats === "number" && Number.isSafeInteger(sats) && sats > 0) return sats;
  }
  const { pricing_rate } = await api.rate();
  const usd =
    (estimatePromptTokens(messages) * model.pricing.per_m_input_usd +
      maxTokens * model.pricing.per_m_output_usd) /
    1_000_000;
  const msat = Math.ceil((usd / pricing_rate) * 1e11);
  return Math.max(minCharge, Math.ceil(msat / 1000));
}
