/**
 * The contract between the gateway's API (which takes payment) and routing (which finds a provider
 * and relays the job over the Owlrun node protocol). Money never crosses this line: routing reports
 * what happened, the API settles it with the ledger.
 */

/** OpenAI-style routing preferences (OpenRouter `provider` object), applied to node ids. */
export interface RoutingPreferences {
  /** try these nodes first, in order */
  order?: string[];
  /** only these nodes */
  only?: string[];
  /** never these nodes */
  ignore?: string[];
  /** when false, only the first candidate is tried (default true) */
  allowFallbacks?: boolean;
  sort?: "price" | "latency" | "throughput";
}

export interface DispatchRequest {
  /**
   * Unique per buyer request (the hold id). Never sent to nodes: it also claims the buyer's change,
   * so every attempt gets its own random wire id.
   */
  jobId: string;
  model: string;
  /** `embeddings` goes only to nodes that announced the model in `embedding_models` */
  kind: "chat" | "completions" | "embeddings";
  /** the buyer's validated OpenAI request body; routing forces stream + include_usage for the node */
  body: Record<string, unknown>;
  /** the cap the buyer paid for; routing enforces it on the relayed stream */
  maxTokens: number;
  preferences?: RoutingPreferences;
  /**
   * A free-tier job: offered (`free_tier: true`) only to nodes that registered `free_tier_pct > 0`;
   * it earns the node karma, not sats.
   */
  free?: boolean;
  /** aborted when the buyer goes away: routing sends `cancel {job_id}` and stops relaying */
  signal: AbortSignal;
}

/** One fragment of a streamed tool call (OpenAI `delta.tool_calls[]`): the first names it. */
export interface ToolCallDelta {
  index?: number;
  id?: string;
  type?: string;
  function?: { name?: string; arguments?: string };
}

/** One OpenAI `chat.completion.chunk` / `text_completion` chunk, parsed from the node's SSE stream. */
export type StreamChunk = Record<string, unknown> & {
  choices?: {
    index?: number;
    delta?: { content?: string | null; role?: string; tool_calls?: ToolCallDelta[] };
    text?: string;
    finish_reason?: string | null;
  }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
};

export interface JobOutcome {
  status: "completed" | "failed" | "cancelled";
  nodeId: string;
  /** usage the node reported in its final chunk, if any */
  reportedUsage?: { promptTokens: number; completionTokens: number };
  /** content chunks counted by the gateway itself, clamped to maxTokens */
  countedCompletionTokens: number;
  /** what to bill: reported usage, clamped to maxTokens and cross-checked against the count */
  billableUsage: { promptTokens: number; completionTokens: number };
  /** true when the node's report disagreed with the gateway's count beyond tolerance */
  usageDisputed: boolean;
  error?: string;
}

export interface JobHandle {
  nodeId: string;
  /** chunks as they arrive; ends when the job ends (completed, failed or cancelled) */
  chunks: AsyncIterable<StreamChunk>;
  /** settles after the last chunk; never rejects */
  outcome: Promise<JobOutcome>;
}

/** No provider could take the job before its first byte: the buyer is refunded in full. */
export class NoProviderError extends Error {
  constructor(
    message: string,
    readonly reason: "no_providers" | "all_rejected" | "all_failed",
  ) {
    super(message);
    this.name = "NoProviderError";
  }
}

export interface ModelOffer {
  model: string;
  nodes: number;
}

export interface Dispatcher {
  /** Resolves once a node accepted and its first byte arrived; fails over before that. */
  dispatch(req: DispatchRequest): Promise<JobHandle>;
  /** models currently served by at least one healthy node */
  models(): ModelOffer[];
  /** models at least one healthy node embeds with (nodes that announced `embedding_models`) */
  embeddingModels?(): ModelOffer[];
  nodesOnline(): number;
}
