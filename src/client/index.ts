/**
 * Typed HTTP client for the gateway API (ARCHITECTURE.md §3), used by the MCP tools and the tests.
 * Every answer is validated with zod; a gateway that cannot be reached becomes one clear
 * `GatewayUnavailableError`, and money that comes back in headers (`X-Cashu-Change`) is surfaced
 * on success and on error alike, so a caller never drops change.
 */
import * as z from "zod";
import { AppError } from "../shared/errors.js";
import {
  type MarketCollect,
  MarketCollectSchema,
  MarketCreatedQuoteSchema,
  MarketCreatedTaskSchema,
  type MarketDeliverRequest,
  type MarketDelivery,
  MarketDeliverySchema,
  type MarketMe,
  MarketMeSchema,
  type MarketMessage,
  MarketMessageSchema,
  MarketMessagesSchema,
  type MarketQuote,
  type MarketQuoteRequest,
  MarketQuoteSchema,
  type MarketTask,
  MarketTaskListSchema,
  type MarketTaskRequest,
  MarketTaskSchema,
} from "./market.js";

export * from "./market.js";

export const DEFAULT_GATEWAY_URL = "http://127.0.0.1:8402";

const DEFAULT_UNAVAILABLE_HINT = "run `npx owlrun-mcp devnet` or set OWLRUN_GATEWAY_URL";

/** The gateway could not be reached (or the connection broke before an answer arrived). */
export class GatewayUnavailableError extends AppError {
  constructor(
    readonly gatewayUrl: string,
    readonly detail: string,
    /** what to do about it, in the caller's situation */
    hint = DEFAULT_UNAVAILABLE_HINT,
  ) {
    super(`no gateway at ${gatewayUrl}: ${hint} (${detail})`, "gateway_unavailable", 503);
  }
}

/** The configured gateway URL is unusable: every call answers with the configuration error. */
export class GatewayConfigError extends AppError {
  constructor(message: string) {
    super(message, "gateway_misconfigured", 503);
  }
}

/** The gateway answered with its error shape `{"error":{"message","type","code"}}` (or something unexpected). */
export class GatewayApiError extends AppError {
  constructor(
    message: string,
    type: string,
    status: number,
    /** a refund or change token the gateway sent with the error (X-Cashu-Change) */
    readonly changeToken?: string,
    readonly retryAfterSec?: number,
  ) {
    super(message, type, status);
  }
}

// ---- wire shapes (tolerant: unknown fields are ignored) -------------------------------------------

export const GatewayInfoSchema = z.object({
  name: z.string().optional(),
  version: z.string().optional(),
  mints: z.array(z.string()),
  /** how paid routes can be paid (xcashu, accounts, l402, bsv); absent on older gateways */
  payment_methods: z.array(z.string()).optional(),
  unit: z.string().optional(),
  min_charge_sats: z.number().optional(),
  /** the model to use when a request names none (absent on older gateways) */
  default_model: z.string().nullable().optional(),
});
export type GatewayInfo = z.infer<typeof GatewayInfoSchema>;

export const GatewayModelSchema = z.object({
  id: z.string(),
  providers: z.number().optional(),
  pricing: z.object({ per_m_input_usd: z.number(), per_m_output_usd: z.number() }).optional(),
  routecat_pricing: z
    .object({
      input_per_1m_tokens_usd: z.number().optional(),
      output_per_1m_tokens_usd: z.number().optional(),
      input_per_1m_tokens_sats: z.number(),
      output_per_1m_tokens_sats: z.number(),
    })
    .optional(),
});
export type GatewayModel = z.infer<typeof GatewayModelSchema>;

const ModelListSchema = z.object({ data: z.array(GatewayModelSchema) });

export const ChatCompletionSchema = z.object({
  id: z.string().optional(),
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({ role: z.string().optional(), content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      total_tokens: z.number().optional(),
      cost: z.object({ sats: z.number(), change_sats: z.number() }).optional(),
    })
    .optional(),
});
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

const ErrorBodySchema = z.object({
  error: z.object({ message: z.string(), type: z.string().optional(), code: z.unknown().optional() }),
});

const ChallengeBodySchema = z.object({ error: z.object({ amount_sats: z.number().int().positive() }) });

const ChangeSchema = z.object({ token: z.string(), change_sats: z.number() });

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  max_tokens?: number;
  temperature?: number;
}

export interface ChatAnswer {
  completion: ChatCompletion;
  /** change for the unused part of the token (absent when nothing came back) */
  changeToken?: string;
  /** what the gateway says it charged (usage.cost.sats, else the X-Cost-Sats header) */
  costSats?: number;
  /** change the gateway says it owes (usage.cost.change_sats) */
  changeSats?: number;
}

export interface GatewayClientOptions {
  baseUrl?: string;
  /** what a GatewayUnavailableError tells the user to do (default: run a devnet or set OWLRUN_GATEWAY_URL) */
  unavailableHint?: string;
  /** the configured URL was invalid: no request is sent, each call throws GatewayConfigError with this */
  configError?: string;
  /** sent as `Authorization: Bearer …` (an rc_ account key): the identity of market calls; X-Cashu requests do not need it */
  apiKey?: string;
  /** per-request timeout for the short calls (info, models, change) */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
}

export class GatewayClient {
  readonly baseUrl: string;
  private readonly apiKey?: string;
  private readonly timeoutMs: number;
  private readonly doFetch: typeof fetch;
  private readonly unavailableHint?: string;
  private readonly configError?: string;

  constructor(opts: GatewayClientOptions = {}) {
    this.unavailableHint = opts.unavailableHint;
    this.configError = opts.configError;
    this.baseUrl = (opts.baseUrl ?? DEFAULT_GATEWAY_URL).replace(/\/+$/, "");
    this.apiKey = opts.apiKey;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.doFetch = opts.fetchImpl ?? fetch;
  }

  private async request(
    path: string,
    init: RequestInit & { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Response> {
    if (this.configError) throw new GatewayConfigError(this.configError);
    const headers = new Headers(init.headers);
    headers.set("accept", "application/json");
    if (this.apiKey && !headers.has("authorization")) headers.set("authorization", `Bearer ${this.apiKey}`);
    const signals = [AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs)];
    if (init.signal) signals.push(init.signal);
    try {
      return await this.doFetch(`${this.baseUrl}${path}`, {
        ...init,
        headers,
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw this.unavailable(err);
    }
  }

  private unavailable(err: unknown): GatewayUnavailableError {
    return new GatewayUnavailableError(this.baseUrl, describeFetchError(err), this.unavailableHint);
  }

  private async json<S extends z.ZodType>(res: Response, schema: S, what: string): Promise<z.infer<S>> {
    let body: unknown;
    try {
      body = await res.json();
    } catch (err) {
      if (isNetworkError(err)) throw this.unavailable(err);
      throw new GatewayApiError(`${what}: the gateway did not answer JSON`, "invalid_response", 502);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new GatewayApiError(
        `${what}: unexpected answer from the gateway (${issue?.path.join(".") ?? ""} ${issue?.message ?? ""})`.trim(),
        "invalid_response",
        502,
      );
    }
    return parsed.data;
  }

  private async apiError(res: Response, what: string): Promise<GatewayApiError> {
    const changeToken = res.headers.get("x-cashu-change") ?? undefined;
    const retry = Number(res.headers.get("retry-after"));
    const text = await res.text().catch(() => "");
    let message = `${what}: HTTP ${res.status}`;
    let type = "gateway_error";
    try {
      const parsed = ErrorBodySchema.safeParse(JSON.parse(text));
      if (parsed.success) {
        message = parsed.data.error.message;
        type = parsed.data.error.type ?? type;
      }
    } catch {
      if (text) message = `${message}: ${text.slice(0, 200)}`;
    }
    return new GatewayApiError(
      message,
      type,
      res.status,
      changeToken,
      Number.isFinite(retry) && retry > 0 ? retry : undefined,
    );
  }

  /** Whether an account key is configured (the market's identity). */
  get hasApiKey(): boolean {
    return this.apiKey !== undefined;
  }

  /** One JSON call: the answer validated with `schema`, a gateway error as GatewayApiError. */
  private async call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<z.infer<S>> {
    const what = `${method} ${path.split("?")[0]}`;
    const res = await this.request(path, {
      method,
      timeoutMs,
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    if (!res.ok) throw await this.apiError(res, what);
    return this.json(res, schema, what);
  }

  /** GET /v1/info: the trusted mints (the first is where to mint) and the money rules. */
  info(): Promise<GatewayInfo> {
    return this.call("GET", "/v1/info", GatewayInfoSchema);
  }

  /** GET /v1/models: models online with their prices. */
  async models(): Promise<GatewayModel[]> {
    return (await this.call("GET", "/v1/models", ModelListSchema)).data;
  }

  /**
   * POST /v1/chat/completions without credentials, to read its L402 challenge: the invoice to pay
   * and the macaroon to send back with the preimage (402ai / L402).
   */
  async l402Challenge(
    body: ChatRequest,
    opts: { signal?: AbortSignal } = {},
  ): Promise<{ macaroon: string; invoice: string; amountSats?: number }> {
    const res = await this.request("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: false }),
      signal: opts.signal,
    });
    const header = res.headers.get("www-authenticate") ?? "";
    const m = /^L402\s+macaroon="([^"]+)",\s*invoice="([^"]+)"/i.exec(header);
    if (res.status !== 402 || !m) {
      if (res.ok) await res.body?.cancel();
      throw res.ok
        ? new GatewayApiError("the gateway served the request without payment", "invalid_response", 502)
        : await this.apiError(res, "POST /v1/chat/completions (L402 challenge)");
    }
    const body402 = ChallengeBodySchema.safeParse(await res.json().catch(() => null));
    return {
      macaroon: m[1]!,
      invoice: m[2]!,
      amountSats: body402.success ? body402.data.error.amount_sats : undefined,
    };
  }

  /**
   * POST /v1/chat/completions (non-streaming) paid with `X-Cashu: token`, or with an L402
   * credential (`<macaroon>:<preimage>`) after paying its invoice. `requestId` (a UUID the
   * caller journaled first) lets the change be fetched later with `change()` if the answer is lost.
   * Throws GatewayApiError (with `changeToken` when the gateway refunded) or GatewayUnavailableError.
   */
  async chat(
    body: ChatRequest,
    payment: { token: string; requestId?: string } | { l402: string },
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<ChatAnswer> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if ("l402" in payment) headers.authorization = `L402 ${payment.l402}`;
    else {
      headers["x-cashu"] = payment.token;
      if (payment.requestId) headers["x-owlrun-request-id"] = payment.requestId;
    }
    const res = await this.request("/v1/chat/completions", {
      method: "POST",
      headers,
      body: JSON.stringify({ ...body, stream: false }),
      signal: opts.signal,
      timeoutMs: opts.timeoutMs ?? 300_000,
    });
    if (!res.ok) throw await this.apiError(res, "POST /v1/chat/completions");
    const changeToken = res.headers.get("x-cashu-change") ?? undefined;
    let completion: ChatCompletion;
    try {
      completion = await this.json(res, ChatCompletionSchema, "POST /v1/chat/completions");
    } catch (err) {
      // The change arrived in the headers: keep it with the error.
      if (err instanceof GatewayApiError)
        throw new GatewayApiError(err.message, err.type, err.status, changeToken);
      if (err instanceof GatewayUnavailableError && changeToken)
        throw new GatewayApiError(err.message, err.type, err.status, changeToken);
      throw err;
    }
    const headerCost = Number(res.headers.get("x-cost-sats"));
    return {
      completion,
      changeToken,
      costSats: completion.usage?.cost?.sats ?? (Number.isFinite(headerCost) ? headerCost : undefined),
      changeSats: completion.usage?.cost?.change_sats,
    };
  }

  // ---- the task marketplace (/v1/market): identity is the account key ---------------------------
  async marketTasks(q: { state?: string; limit?: number; offset?: number } = {}): Promise<MarketTask[]> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) query.set(k, String(v));
    const qs = query.size ? `?${query}` : "";
    return (await this.call("GET", `/v1/market/tasks${qs}`, MarketTaskListSchema)).tasks;
  }

  /** A task; with an account key also your part of it (quotes, delivery). */
  marketTask(taskId: string): Promise<MarketTask> {
    return this.call("GET", taskPath(taskId), MarketTaskSchema);
  }

  /** Posts a task; the posting fee is paid from the account balance. */
  marketCreateTask(body: MarketTaskRequest) {
    return this.call("POST", "/v1/market/tasks", MarketCreatedTaskSchema, body);
  }

  /** Quotes on a task; the quoting fee is paid from the account balance. */
  marketQuote(taskId: string, body: MarketQuoteRequest & { price_sats: number }) {
    return this.call("POST", `${taskPath(taskId)}/quotes`, MarketCreatedQuoteSchema, body);
  }

  /** Changes your pending quote. */
  marketEditQuote(taskId: string, quoteId: string, body: MarketQuoteRequest): Promise<MarketQuote> {
    return this.call("PATCH", quotePath(taskId, quoteId), MarketQuoteSchema, body);
  }

  /**
   * Accepts a quote of your task: its price is locked in escrow from your balance. With
   * `priceSats`, refused when the quote's price is no longer that.
   */
  marketAccept(taskId: string, quoteId: string, priceSats?: number): Promise<MarketTask> {
    return this.call("POST", `${quotePath(taskId, quoteId)}/accept`, MarketTaskSchema, {
      price_sats: priceSats,
    });
  }

  async marketMessages(taskId: string, quoteId: string): Promise<MarketMessage[]> {
    return (await this.call("GET", `${quotePath(taskId, quoteId)}/messages`, MarketMessagesSchema)).messages;
  }

  marketSendMessage(taskId: string, quoteId: string, body: string): Promise<MarketMessage> {
    return this.call("POST", `${quotePath(taskId, quoteId)}/messages`, MarketMessageSchema, { body });
  }

  /** Uploads the delivery of a task you were hired for. */
  marketDeliver(taskId: string, body: MarketDeliverRequest): Promise<MarketTask> {
    return this.call("POST", `${taskPath(taskId)}/deliver`, MarketTaskSchema, body, 120_000);
  }

  marketDelivery(taskId: string): Promise<MarketDelivery> {
    return this.call("GET", `${taskPath(taskId)}/delivery`, MarketDeliverySchema, undefined, 120_000);
  }

  /** confirm: release the escrow to the worker; dispute: stop the automatic release; cancel: close the task. */
  marketClose(
    taskId: string,
    action: "confirm" | "dispute" | "cancel",
    reason?: string,
  ): Promise<MarketTask> {
    return this.call(
      "POST",
      `${taskPath(taskId)}/${action}`,
      MarketTaskSchema,
      action === "dispute" ? { reason } : {},
    );
  }

  /** Pays your balance to a bolt11 invoice through the gateway's mint. */
  marketCollect(body: { invoice: string; amount_sats?: number }): Promise<MarketCollect> {
    return this.call("POST", "/v1/market/collect", MarketCollectSchema, body, 120_000);
  }

  marketMe(): Promise<MarketMe> {
    return this.call("GET", "/v1/market/me", MarketMeSchema);
  }

  /** GET /v1/cashu/change/:id: change of a request whose answer was lost; null when none is stored. */
  async change(requestId: string): Promise<{ token: string; changeSats: number } | null> {
    const res = await this.request(`/v1/cashu/change/${encodeURIComponent(requestId)}`);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) throw await this.apiError(res, "GET /v1/cashu/change");
    const body = await this.json(res, ChangeSchema, "GET /v1/cashu/change");
    return { token: body.token, changeSats: body.change_sats };
  }
}

const taskPath = (taskId: string) => `/v1/market/tasks/${encodeURIComponent(taskId)}`;
const quotePath = (taskId: string, quoteId: string) =>
  `${taskPath(taskId)}/quotes/${encodeURIComponent(quoteId)}`;

function isNetworkError(err: unknown): boolean {
  const e = err as { name?: string };
  return e?.name === "TypeError" || e?.name === "AbortError" || e?.name === "TimeoutError";
}

function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === "TimeoutError") return "timed out";
  if (e?.cause?.code) return e.cause.code;
  return e?.cause?.message ?? e?.message ?? String(err);
}
