/**
 * The operator's upstream providers (`--upstream upstreams.json`): OpenAI-compatible APIs that
 * serve next to Owlrun nodes. One zod schema validates the file; a bad file stops the start with a
 * message that names the problem and never the key.
 *
 *   { "upstreams": [ {
 *       "name": "openrouter",
 *       "base_url": "https://openrouter.ai/api/v1",
 *       "api_key_env": "OPENROUTER_API_KEY",
 *       "margin_pct": 20,
 *       "models": {
 *         "gpt-4o-mini": { "upstream_model": "openai/gpt-4o-mini",
 *                          "cost": { "per_m_input_usd": 0.15, "per_m_output_usd": 0.6 } },
 *         "llama3.1:8b": { "upstream_model": "meta-llama/llama-3.1-8b-instruct",
 *                          "price": { "per_m_input_usd": 0.05, "per_m_output_usd": 0.1 } },
 *         "text-embedding-3-small": { "embeddings": true,
 *                          "price": { "per_m_input_usd": 0.03, "per_m_output_usd": 0 } } } } ] }
 *
 * Each model is sold at `price` (USD per 1M tokens, as in the price file) or at the upstream's own
 * list price `cost` plus the upstream's `margin_pct`.
 */
import { readFileSync } from "node:fs";
import * as z from "zod";
import { ConfigError } from "../../src/shared/index.js";
import { ModelRateSchema } from "../payments/price-file.js";
import type { ModelRate } from "../payments/pricing.js";

/** A start-up error (exit 2 from the CLI), like any bad flag. */
export class UpstreamConfigError extends ConfigError {}

const ModelName = z.string().min(1).max(200);

export const UpstreamModelSchema = z
  .strictObject({
    /** the name the upstream knows the model by (default: the name buyers use) */
    upstream_model: ModelName.optional(),
    /** what buyers pay, USD per 1M input/output tokens */
    price: ModelRateSchema.optional(),
    /** the upstream's own list price; buyers pay it plus the upstream's margin_pct */
    cost: ModelRateSchema.optional(),
    /** served on /v1/embeddings (POST {base}/embeddings) instead of chat */
    embeddings: z.boolean().optional(),
  })
  .refine((m) => (m.price === undefined) !== (m.cost === undefined), {
    message: "give each model exactly one of price (what buyers pay) or cost (the upstream's list price)",
  });

export const UpstreamSchema = z
  .strictObject({
    /** names the upstream in logs, ledger entries (`equity:upstream:<name>`) and routing preferences */
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "name may use letters, digits and . _ - (up to 63)"),
    /** where `/chat/completions` and `/embeddings` live, e.g. https://api.openai.com/v1 */
    base_url: z
      .url({ protocol: /^https?$/, error: "base_url must be an http(s) URL" })
      .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), "put credentials in api_key, not in base_url"),
    /** the key, sent as `Authorization: Bearer …` (prefer api_key_env: keys in files leak) */
    api_key: z.string().min(1).max(4096).optional(),
    /** the environment variable holding the key */
    api_key_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "api_key_env must be an environment variable name")
      .optional(),
    /** percent added to `cost` prices */
    margin_pct: z.number().finite().min(0).max(10_000).optional(),
    /** how long the upstream may take to answer with its headers before the job moves on (ms) */
    timeout_ms: z.number().int().min(50).max(600_000).optional(),
    models: z
      .record(ModelName, UpstreamModelSchema)
      .refine((m) => Object.keys(m).length > 0, "list at least one model"),
  })
  .refine((u) => !(u.api_key !== undefined && u.api_key_env !== undefined), {
    message: "give api_key or api_key_env, not both",
  })
  .refine((u) => u.margin_pct !== undefined || Object.values(u.models).every((m) => m.cost === undefined), {
    message: "models priced by cost need the upstream's margin_pct",
  });

export const UpstreamsFileSchema = z
  .strictObject({ upstreams: z.array(UpstreamSchema).min(1).max(100) })
  .refine((f) => new Set(f.upstreams.map((u) => u.name)).size === f.upstreams.length, {
    message: "upstream names must be unique",
  });
export type UpstreamsFile = z.infer<typeof UpstreamsFileSchema>;

/** An upstream ready to serve: the key resolved, models split by kind, sale prices computed. */
export interface UpstreamSpec {
  name: string;
  /** without a trailing slash */
  baseUrl: string;
  apiKey?: string;
  /** public model name → the upstream's name, for chat and completions */
  chat: Map<string, string>;
  /** public model name → the upstream's name, for embeddings */
  embeddings: Map<string, string>;
  /** what buyers pay per model (USD per 1M tokens) */
  rates: Record<string, ModelRate>;
  timeoutMs: number;
}

export const DEFAULT_UPSTREAM_TIMEOUT_MS = 10_000;

/** Validates a parsed upstreams document (`source` names it in errors). */
export function parseUpstreams(raw: unknown, source = "upstreams", env = process.env): UpstreamSpec[] {
  const parsed = UpstreamsFileSchema.safeParse(raw);
  if (!parsed.success) {
    // zod's messages name paths and expectations, never the values (so never a key).
    throw new UpstreamConfigError(`${source}: ${z.prettifyError(parsed.error).replace(/\n/g, " ")}`);
  }
  return parsed.data.upstreams.map((u) => {
    let apiKey = u.api_key;
    if (u.api_key_env !== undefined) {
      apiKey = env[u.api_key_env];
      if (!apiKey) {
        throw new UpstreamConfigError(
          `${source}: upstream ${u.name}: environment variable ${u.api_key_env} is not set`,
        );
      }
    }
    const chat = new Map<string, string>();
    const embeddings = new Map<string, string>();
    // Null-prototype maps: a model named "__proto__" stays a model name.
    const rates: Record<string, ModelRate> = Object.create(null);
    const markup = 1 + (u.margin_pct ?? 0) / 100;
    for (const [name, m] of Object.entries(u.models)) {
      (m.embeddings ? embeddings : chat).set(name, m.upstream_model ?? name);
      rates[name] = m.price ?? {
        per_m_input_usd: m.cost!.per_m_input_usd * markup,
        per_m_output_usd: m.cost!.per_m_output_usd * markup,
      };
    }
    return {
      name: u.name,
      baseUrl: u.base_url.replace(/\/+$/, ""),
      ...(apiKey ? { apiKey } : {}),
      chat,
      embeddings,
      rates,
      timeoutMs: u.timeout_ms ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
    };
  });
}

/** Reads and validates `--upstream FILE`. */
export function readUpstreamsFile(path: string, env = process.env): UpstreamSpec[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    // JSON.parse's message quotes a bit of the text near the error, which may be a key.
    const why = err instanceof SyntaxError ? "not valid JSON" : (err as Error).message;
    throw new UpstreamConfigError(`upstream file ${path}: ${why}`);
  }
  return parseUpstreams(raw, `upstream file ${path}`, env);
}

/**
 * The least each model sells at: the highest price any upstream serving it asks (the price table
 * takes these as floors, so an upstream job is never sold below its upstream's price).
 */
export function upstreamPriceFloors(specs: UpstreamSpec[]): Record<string, ModelRate> {
  const floors: Record<string, ModelRate> = Object.create(null);
  for (const s of specs) {
    for (const [model, r] of Object.entries(s.rates)) {
      const f = floors[model];
      floors[model] = f
        ? {
            per_m_input_usd: Math.max(f.per_m_input_usd, r.per_m_input_usd),
            per_m_output_usd: Math.max(f.per_m_output_usd, r.per_m_output_usd),
          }
        : r;
    }
  }
  return floors;
}
