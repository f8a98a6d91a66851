/**
 * The Owlrun node protocol on the wire (shared/protocols/owlrun-node.md), validated with zod at the
 * boundary. Node → gateway messages are checked here; unknown message types and unknown fields are
 * ignored (forward compatibility), and our own additions (`cancel`) are additive.
 *
 * Real agents are written in Go: a nil slice arrives as `null` and unset numbers/strings as `0`/`""`
 * when a field lacks `omitempty`, so the schemas accept those zero values and treat them as "unset".
 */
import { type ParsedFrame as ParsedFrameOf, parseTypedFrame } from "../../src/shared/frames.js";
import * as z from "zod";
import { UPSTREAM_TARGET_PREFIX } from "../ledger/index.js";

export const PROVIDER_KEY_PREFIX = "owlr_prov_";
/** The largest WebSocket frame a node may send (Owlrun frames carry ~4 KiB of SSE text). */
export const MAX_FRAME_BYTES = 64 * 1024;
/** RouteCat refuses payout thresholds under its minimum; so do we (0 = unset, Go's zero value). */
export const MIN_REDEEM_THRESHOLD_SATS = 100;

/** LUD-16 address: user@domain, domain may carry a port (loopback test payees do). */
export const LIGHTNING_ADDRESS_RE =
  /^[a-z0-9._+-]{1,64}@(localhost|[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+)(:\d{1,5})?$/i;

const optString = (max: number) => z.string().max(max).nullish();
const optCount = z.number().nonnegative().max(1e12).nullish();

export const RegisterBody = z.object({
  node_id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:@-]+$/, "node_id may use letters, digits and . _ : @ -")
    // Upstream providers are named `upstream:<name>` (routing/upstream.ts); a node may not pose as one.
    .refine((id) => !id.toLowerCase().startsWith(UPSTREAM_TARGET_PREFIX), {
      message: `node_id may not start with ${UPSTREAM_TARGET_PREFIX}`,
    }),
  api_key: z.string().min(1).max(256),
  gpu: optString(200),
  gpu_vendor: optString(100),
  vram_total_mb: optCount,
  vram_free_mb: optCount,
  vram_exact: z.boolean().nullish(),
  models: z
    .array(z.string().min(1).max(200))
    .max(500)
    .nullish()
    .transform((m) => [...new Set(m ?? [])]),
  /** our extension: models the node embeds with; only such nodes get embedding jobs */
  embedding_models: z
    .array(z.string().min(1).max(200))
    .max(500)
    .nullish()
    .transform((m) => [...new Set(m ?? [])]),
  /**
   * our extension: the node reads the job body from the `job` offer's `body` (no pull round trip);
   * absent for Owlrun agents, which keep pulling it
   */
  inline_job_body: z.boolean().nullish(),
  ollama_url: optString(500),
  region: optString(100),
  wallet: optString(500),
  referral_code: optString(100),
  lightning_address: z
    .string()
    .max(320)
    .nullish()
    .refine((a) => !a || LIGHTNING_ADDRESS_RE.test(a), "lightning_address is not a Lightning address")
    .transform((a) => (a ? a.toLowerCase() : undefined)),
  redeem_threshold_sats: z
    .number()
    .int()
    .nonnegative()
    .max(100_000_000)
    .nullish()
    .refine(
      (t) => !t || t >= MIN_REDEEM_THRESHOLD_SATS,
      `redeem_threshold_sats must be at least ${MIN_REDEEM_THRESHOLD_SATS}`,
    ),
  free_tier_pct: z.number().min(0).max(100).nullish(),
  version: optString(100),
});
export type RegisterBody = z.infer<typeof RegisterBody>;

const JobId = z.string().min(1).max(128);

/** Messages a node sends. Telemetry fields are optional: old and new agents differ. */
export const NodeMessage = z.discriminatedUnion("type", [
  z.looseObject({
    type: z.literal("heartbeat"),
    gpu_util_pct: z.number().nullish(),
    vram_free_mb: z.number().nullish(),
    temp_c: z.number().nullish(),
    power_w: z.number().nullish(),
    queue_depth: z.number().nullish(),
    earning_state: z.string().max(100).nullish(),
  }),
  z.looseObject({ type: z.literal("pong") }),
  z.looseObject({ type: z.literal("accept"), job_id: JobId }),
  z.looseObject({ type: z.literal("reject"), job_id: JobId, reason: z.string().max(500).nullish() }),
  z.looseObject({ type: z.literal("proxy_chunk"), job_id: JobId, data: z.string().max(MAX_FRAME_BYTES) }),
  z.looseObject({ type: z.literal("proxy_done"), job_id: JobId, error: z.string().max(2000).nullish() }),
]);
export type NodeMessage = z.infer<typeof NodeMessage>;
export type HeartbeatMessage = Extract<NodeMessage, { type: "heartbeat" }>;

const KNOWN_TYPES = new Set(["heartbeat", "pong", "accept", "reject", "proxy_chunk", "proxy_done"]);

export type ParsedFrame = ParsedFrameOf<NodeMessage>;

/** A known message, `ignore` for a type we do not know (a newer peer), or `invalid` (misbehaving node). */
export function parseNodeFrame(raw: string): ParsedFrame {
  const chunk = raw.startsWith(CHUNK_HEAD) ? chunkEnvelope(raw) : undefined;
  return chunk ? { kind: "message", msg: chunk } : parseNodeFrameBySchema(raw);
}

/** The general path (JSON.parse, then the schema); parseNodeFrame must always answer the same. */
export function parseNodeFrameBySchema(raw: string): ParsedFrame {
  return parseTypedFrame(raw, KNOWN_TYPES, NodeMessage, fastProxyChunk);
}

const CHUNK_HEAD = '{"type":"proxy_chunk","job_id":"';
const DATA_KEY = '","data":';

/**
 * The relay's hot frame as agents write it, `{"type":"proxy_chunk","job_id":"…","data":"…"}`,
 * read without building the envelope object: a node that cuts a token into nine frames pays the
 * envelope nine times. Only this exact layout is taken here (a job id without escapes or control
 * characters, then `data` as one JSON string literal, then the closing brace); anything else —
 * other key orders, extra fields, escapes in the id, whitespace, duplicate keys — returns undefined
 * and takes the general path. test/routing/frame-parse.test.ts holds it equal to that path.
 */
function chunkEnvelope(raw: string): NodeMessage | undefined {
  const start = CHUNK_HEAD.length;
  const idEnd = raw.indexOf('"', start);
  if (idEnd <= start || idEnd - start > 128) return undefined;
  for (let i = start; i < idEnd; i++) {
    const c = raw.charCodeAt(i);
    if (c < 0x20 || c === 0x5c /* \ */) return undefined;
  }
  if (!raw.startsWith(DATA_KEY, idEnd) || raw.charCodeAt(raw.length - 1) !== 0x7d /* } */) return undefined;
  const literal = raw.slice(idEnd + DATA_KEY.length, raw.length - 1);
  // One JSON string literal parses to a string; anything more (`"a","x":1`) throws or is no string.
  if (literal.charCodeAt(0) !== 0x22 || literal.charCodeAt(literal.length - 1) !== 0x22) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(literal);
  } catch {
    return undefined;
  }
  if (typeof data !== "string" || data.length > MAX_FRAME_BYTES) return undefined;
  return { type: "proxy_chunk", job_id: raw.slice(start, idEnd), data };
}

/**
 * The relay's hot frame checked by hand: exactly what the proxy_chunk schema accepts (a job id of
 * 1–128 characters, data of at most MAX_FRAME_BYTES); anything else falls through to the schema,
 * which gives the error.
 */
function fastProxyChunk(obj: Record<string, unknown>, type: string): NodeMessage | undefined {
  if (type !== "proxy_chunk") return undefined;
  const { job_id: id, data } = obj;
  if (typeof id !== "string" || id.length < 1 || id.length > 128) return undefined;
  if (typeof data !== "string" || data.length > MAX_FRAME_BYTES) return undefined;
  return obj as NodeMessage;
}

// ---- gateway → node ---------------------------------------------------------------------------

export interface Broadcast {
  id: string | number;
  title: string;
  message: string;
  severity: string;
  created_at: string | number;
}

export interface WithdrawRecord {
  /** Owlrun reads millisats from this field despite its name */
  amount_sats: number;
  payment_hash: string;
  timestamp: string | number;
}

/** The body of `heartbeat_ack` (fields as Owlrun agents read them). */
export interface AckInfo {
  status: string;
  jobs_today: number;
  tokens_today: number;
  earned_today_sats: number;
  earned_total_sats: number;
  balance_sats: number;
  queue_depth_global: number;
  btc_live_usd: number;
  btc_daily_avg: number;
  btc_price_status: string;
  broadcasts: Broadcast[];
  withdraw_history: WithdrawRecord[];
  karma_score: number;
  karma_tier: string;
  free_tier_jobs: number;
}

export const DEFAULT_ACK: AckInfo = {
  status: "ok",
  jobs_today: 0,
  tokens_today: 0,
  earned_today_sats: 0,
  earned_total_sats: 0,
  balance_sats: 0,
  queue_depth_global: 0,
  btc_live_usd: 0,
  btc_daily_avg: 0,
  btc_price_status: "unknown",
  broadcasts: [],
  withdraw_history: [],
  karma_score: 0,
  karma_tier: "",
  free_tier_jobs: 0,
};

export type GatewayMessage =
  | ({ type: "heartbeat_ack" } & AckInfo)
  | { type: "ping" }
  | {
      type: "job";
      job_id: string;
      model: string;
      vram_required_mb: number;
      buyer_region: string;
      free_tier: boolean;
      /** our extension: the backend route to run the job on (only "/v1/embeddings"; absent = chat) */
      endpoint?: string;
      /** our extension: the body the node would pull, for nodes that registered `inline_job_body` */
      body?: Record<string, unknown>;
    }
  | { type: "job_complete"; job_id: string; tokens: number; earned_usd: number }
  | { type: "drain" }
  /** our extension: the buyer went away or max_tokens was reached; old nodes ignore it */
  | { type: "cancel"; job_id: string };
