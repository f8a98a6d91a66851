/** The gateway's public routes the page reads (same origin): info, models, stats, price. */

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
  info: () =>
    getJson<{ mints: string[]; min_charge_sats: number; default_model?: string | null }>("/v1/info"),
  models: () => getJson<{ data: ModelInfo[] }>("/v1/models").then((r) => r.data),
  stats: () => getJson<Stats>("/v1/stats"),
};

/** The gateway's own prompt size estimate (≈ 1 token per 3 characters of the messages' JSON). */
/**
 * The most a prompt can cost, from the gateway's own `POST /v1/price` (the same number it holds
 * from the X-Cashu token), so the page never prices with a formula of its own.
 */
export async function maxCostSats(
  model: ModelInfo,
  messages: ChatMessage[],
  maxTokens: number,
): Promise<number> {
  const res = await fetch("/v1/price", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: model.id, messages, max_tokens: maxTokens }),
  });
  const body = (await res.json().catch(() => ({}))) as { sats?: unknown; error?: { message?: string } };
  if (!res.ok || typeof body.sats !== "number" || !Number.isSafeInteger(body.sats) || body.sats <= 0)
    throw new Error(body.error?.message ?? `the gateway could not price this prompt (HTTP ${res.status})`);
  return body.sats;
}
