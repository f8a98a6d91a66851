/**
 * What a node gets from a registration and a request: the embedding models and free-tier share a
 * stored registration announced, and the body a node pulls for a job.
 */
import type { NodeRow } from "./store.js";
import type { DispatchRequest } from "./types.js";

/** The embedding models a stored registration announced (none for Owlrun agents). */
export function embedModelsOf(node: NodeRow): string[] {
  try {
    const reg = JSON.parse(node.registration ?? "{}") as { embedding_models?: unknown };
    return Array.isArray(reg.embedding_models)
      ? reg.embedding_models.filter((m) => typeof m === "string")
      : [];
  } catch {
    return [];
  }
}

/** The `free_tier_pct` a node registered (0 when absent or unreadable). */
export function freeTierPctOf(registration: string): number {
  try {
    const pct = (JSON.parse(registration) as { free_tier_pct?: unknown }).free_tier_pct;
    return typeof pct === "number" && pct > 0 ? Math.min(100, pct) : 0;
  } catch {
    return 0;
  }
}

/**
 * The body a node pulls: the buyer's request in OpenAI chat form (the Owlrun node POSTs it to
 * Ollama's /v1/chat/completions), streaming with usage, one choice, max_tokens capped at what the
 * buyer paid for, and without gateway-only fields. A `completions` prompt becomes one user message.
 */
export function nodeRequestBody(req: Pick<DispatchRequest, "body" | "model" | "kind" | "maxTokens">) {
  const body: Record<string, unknown> = { ...req.body };
  for (const k of ["provider", "models", "user", "n", "stream_options"]) delete body[k];
  if (req.kind === "completions") {
    const p = body.prompt;
    const text = Array.isArray(p) ? p.map(String).join("\n") : typeof p === "string" ? p : "";
    for (const k of ["prompt", "suffix", "echo", "best_of", "logprobs"]) delete body[k];
    body.messages = [{ role: "user", content: text }];
  }
  body.model = req.model;
  body.stream = true;
  body.stream_options = { include_usage: true };
  body.max_tokens = req.maxTokens;
  if ("max_completion_tokens" in body) body.max_completion_tokens = req.maxTokens;
  return body;
}
