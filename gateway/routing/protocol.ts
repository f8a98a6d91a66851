/**
 * The Owlrun node protocol on the wire (protocols/owlrun-node.md), validated with zod at the
 * boundary. Unknown message types and unknown fields are ignored (forward compatibility); our own
 * additions (`cancel`) are additive.
 */
import * as z from "zod";

export const PROVIDER_KEY_PREFIX = "owlr_prov_";
export const LIGHTNING_ADDRESS_RE = /^[a-z0-9._+-]{1,64}@[a-z0-9.-]{1,253}(:\d{1,5})?$/i;

export const RegisterBody = z.looseObject({
  node_id: z.string().min(1).max(128),
  api_key: z.string().min(1).max(256),
  gpu: z.string().max(200).optional(),
  gpu_vendor: z.string().max(100).optional(),
  vram_total_mb: z.number().int().nonnegative().optional(),
  vram_free_mb: z.number().int().nonnegative().optional(),
  vram_exact: z.boolean().optional(),
  models: z.array(z.string().min(1).max(200)).max(500),
  ollama_url: z.string().max(500).optional(),
  region: z.string().max(100).optional(),
  wallet: z.string().max(500).optional(),
  referral_code: z.string().max(100).optional(),
  lightning_address: z
    .string()
    .regex(LIGHTNING_ADDRESS_RE, "not a lightning address")
    .optional()
    .or(z.literal("")),
  redeem_threshold_sats: z.number().int().min(100).max(100_000_000).optional(),
  free_tier_pct: z.number().min(0).max(100).optional(),
  version: z.string().max(100).optional(),
});
export type RegisterBody = z.infer<typeof RegisterBody>;

const JobId = z.string().min(1).max(128);

/** Messages a node sends. */
export const NodeMessage = z.discriminatedUnion("type", [
  z.looseObject({
    type: z.literal("heartbeat"),
    gpu_util_pct: z.number().optional(),
    vram_free_mb: z.number().optional(),
    queue_depth: z.number().optional(),
  }),
  z.looseObject({ type: z.literal("pong") }),
  z.looseObject({ type: z.literal("accept"), job_id: JobId }),
  z.looseObject({ type: z.literal("reject"), job_id: JobId, reason: z.string().max(500).optional() }),
  z.looseObject({ type: z.literal("proxy_chunk"), job_id: JobId, data: z.string().max(64 * 1024) }),
  z.looseObject({ type: z.literal("proxy_done"), job_id: JobId, error: z.string().max(2000).optional() }),
]);
export type NodeMessage = z.infer<typeof NodeMessage>;

const KNOWN_TYPES = new Set(["heartbeat", "pong", "accept", "reject", "proxy_chunk", "proxy_done"]);

/** Parses a frame: a known message, `ignore` for unknown types, or `invalid` (the node is misbehaving). */
export function parseNodeFrame(
  raw: string,
): { kind: "message"; msg: NodeMessage } | { kind: "ignore" } | { kind: "invalid"; why: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { kind: "invalid", why: "not JSON" };
  }
  if (typeof json !== "object" || json === null || typeof (json as { type?: unknown }).type !== "string") {
    return { kind: "invalid", why: "no message type" };
  }
  if (!KNOWN_TYPES.has((json as { type: string }).type)) return { kind: "ignore" };
  const r = NodeMessage.safeParse(json);
  return r.success
    ? { kind: "message", msg: r.data }
    : { kind: "invalid", why: r.error.issues[0]?.message ?? "bad message" };
}
