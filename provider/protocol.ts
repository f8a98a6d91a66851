/**
 * The Owlrun node protocol as the node sees it (shared/protocols/owlrun-node.md). Gateway → node
 * messages are zod-validated here; unknown types and unknown fields are ignored, and fields a Go
 * gateway may send as `null` are accepted as unset. `cancel` is our additive extension.
 */
import { type ParsedFrame as ParsedFrameOf, parseTypedFrame } from "../src/shared/frames.js";
import * as z from "zod";

const JobId = z.string().min(1).max(128);
const num = z.number().finite().nullish();
const str = (max: number) => z.string().max(max).nullish();

export const WithdrawRecord = z.looseObject({
  /** millisats, despite the name (Owlrun agents read it so) */
  amount_sats: num,
  payment_hash: str(200),
  timestamp: z.union([z.string().max(100), z.number()]).nullish(),
});
export type WithdrawRecord = z.infer<typeof WithdrawRecord>;

export const Broadcast = z.looseObject({
  id: z.union([z.string().max(200), z.number()]).nullish(),
  title: str(500),
  message: str(4000),
  severity: str(50),
  created_at: z.union([z.string().max(100), z.number()]).nullish(),
});

export const GatewayMessage = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("ping") }),
  z.looseObject({ type: z.literal("drain") }),
  z.looseObject({ type: z.literal("cancel"), job_id: JobId }),
  z.looseObject({
    type: z.literal("job"),
    job_id: JobId,
    model: z.string().min(1).max(200),
    vram_required_mb: num,
    buyer_region: str(100),
    free_tier: z.boolean().nullish(),
    /** our extension: "/v1/embeddings" for an embedding job; absent = chat (what Owlrun sends) */
    endpoint: str(200),
    /** our extension: the job body itself (we register `inline_job_body`); absent: pull it */
    body: z.unknown().optional(),
  }),
  z.looseObject({
    type: z.literal("heartbeat_ack"),
    status: str(100),
    jobs_today: num,
    tokens_today: num,
    earned_today_sats: num,
    earned_total_sats: num,
    balance_sats: num,
    queue_depth_global: num,
    btc_live_usd: num,
    btc_daily_avg: num,
    btc_price_status: str(100),
    broadcasts: z.array(Broadcast).max(1000).nullish(),
    withdraw_history: z.array(WithdrawRecord).max(10_000).nullish(),
    karma_score: num,
    karma_tier: str(100),
    free_tier_jobs: num,
  }),
  z.looseObject({ type: z.literal("job_complete"), job_id: JobId, tokens: num, earned_usd: num }),
]);
export type GatewayMessage = z.infer<typeof GatewayMessage>;
export type JobMessage = Extract<GatewayMessage, { type: "job" }>;
export type HeartbeatAck = Extract<GatewayMessage, { type: "heartbeat_ack" }>;

const KNOWN = new Set(["ping", "drain", "cancel", "job", "heartbeat_ack", "job_complete"]);

export type ParsedFrame = ParsedFrameOf<GatewayMessage>;

/** A known message, `ignore` for a type this node does not know (a newer gateway), or `invalid`. */
export function parseGatewayFrame(raw: string): ParsedFrame {
  return parseTypedFrame(raw, KNOWN, GatewayMessage);
}

/** Node → gateway messages. */
export type NodeMessage =
  | {
      type: "heartbeat";
      gpu_util_pct: number;
      vram_free_mb: number;
      temp_c: number;
      power_w: number;
      queue_depth: number;
      earning_state: string;
    }
  | { type: "pong" }
  | { type: "accept"; job_id: string }
  | { type: "reject"; job_id: string; reason: string }
  | { type: "proxy_chunk"; job_id: string; data: string }
  | { type: "proxy_done"; job_id: string; error?: string };

/** The registration body (`POST /v1/gateway/register`), snake_case as Owlrun agents send it. */
export interface RegisterBody {
  node_id: string;
  api_key: string;
  gpu: string;
  gpu_vendor: string;
  vram_total_mb: number;
  vram_free_mb: number;
  vram_exact: boolean;
  models: string[];
  /** our extension: models this node embeds with (only then does it get embedding jobs) */
  embedding_models?: string[];
  /** our extension: send the job body in the `job` offer (no pull round trip) */
  inline_job_body?: boolean;
  ollama_url: string;
  region: string;
  lightning_address?: string;
  /** the share of work offered free (free-tier jobs earn karma, not sats); absent: none */
  free_tier_pct?: number;
  version: string;
}

/** The job body the node pulls: an OpenAI chat or completions request. */
export const JobBody = z
  .looseObject({
    model: z.string().max(200).nullish(),
    messages: z.array(z.unknown()).max(10_000).nullish(),
    prompt: z.union([z.string(), z.array(z.string())]).nullish(),
    max_tokens: z.number().nullish(),
    max_completion_tokens: z.number().nullish(),
  })
  .refine((b) => Array.isArray(b.messages) || b.prompt != null, "neither messages nor prompt");

/** The body of an embedding job: an OpenAI embeddings request with text inputs. */
export const EmbedJobBody = z.looseObject({
  model: z.string().max(200).nullish(),
  input: z.union([z.string(), z.array(z.string()).min(1).max(4096)]),
  dimensions: z.number().int().positive().nullish(),
});

/** The one endpoint extension a job may name. */
export const EMBEDDINGS_ENDPOINT = "/v1/embeddings";

/** Largest `data` of one proxy_chunk frame, in UTF-8 bytes. */
export const MAX_CHUNK_BYTES = 4096;

/**
 * Cuts SSE text into pieces of at most `max` UTF-8 bytes, never inside a character (the gateway
 * reassembles SSE lines split across frames).
 */
export function splitUtf8(text: string, max = MAX_CHUNK_BYTES): string[] {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= max) return [text];
  const out: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + max, bytes.length);
    // back up to a character boundary: continuation bytes are 10xxxxxx
    while (end < bytes.length && end > start && (bytes[end]! & 0xc0) === 0x80) end--;
    out.push(bytes.toString("utf8", start, end));
    start = end;
  }
  return out;
}
