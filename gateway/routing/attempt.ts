/**
 * One try of a job on one node: `job` offer → `accept` → the node pulls the body → `proxy_chunk`
 * frames of OpenAI SSE text → `proxy_done`. Reassembles SSE lines split across frames, counts the
 * content itself, enforces max_tokens, and cross-checks the node's usage report before anything is
 * billed. Anything that goes wrong before the first content byte rejects `firstByte` (the dispatcher
 * then moves the job to the next node); after it, the job ends as "failed" with what was delivered.
 */
import { timeline } from "../../src/shared/index.js";
import { EmbeddingAnswerError, MAX_EMBEDDING_ANSWER_BYTES, parseEmbeddingAnswer } from "./embeddings.js";
import type { GatewayMessage } from "./protocol.js";
import { SseDecoder } from "./sse.js";
import type { JobOutcome, StreamChunk } from "./types.js";
import { judgeUsage, measureChunk, type PromptBounds, reportedUsage, type Usage } from "./usage.js";

/** Chunks without content a node may send per job (role/finish/usage chunks are a handful). */
const MAX_EMPTY_CHUNKS = 512;

export interface AttemptNode {
  nodeId: string;
  /** hash of the provider key the node's connection authenticated with */
  keyHash: string;
  send(msg: GatewayMessage): void;
  /** the node takes the body in the offer (`inline_job_body`, our extension); else it pulls it */
  inlineBody?: boolean;
}

/**
 * The largest body (JSON characters) sent in an offer: with the envelope it stays well inside the
 * 1 MiB frames a node accepts even as 3-byte UTF-8; a larger one is pulled over HTTP as before.
 */
export const MAX_INLINE_BODY_CHARS = 256 * 1024;

/** Whether `body` fits in an offer, serialised at most once however many nodes are offered it. */
export function inlineBodyCheck(body: Record<string, unknown>): () => boolean {
  let fits: boolean | undefined;
  return () => (fits ??= JSON.stringify(body).length <= MAX_INLINE_BODY_CHARS);
}

export interface AttemptOptions {
  /** the job id this node sees: fresh per attempt, never the buyer's request id */
  wireId: string;
  node: AttemptNode;
  model: string;
  /** what the node pulls (stream and usage forced on, max_tokens capped) */
  body: Record<string, unknown>;
  /** `inlineBodyCheck(body)` shared by the job's attempts (default: one per attempt) */
  bodyFitsInline?: () => boolean;
  maxTokens: number;
  /** a free-tier job (`free_tier: true` in the offer) */
  free?: boolean;
  prompt: PromptBounds;
  /**
   * An embeddings job (`/v1/embeddings`, our extension): the node relays one JSON answer for this
   * many inputs instead of an SSE stream; it is checked whole at proxy_done.
   */
  embeddings?: { endpoint: string; inputs: number };
  acceptTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  /** synchronous bookkeeping when the attempt ends (load, disputes, stats) */
  onEnd(attempt: Attempt, outcome: JobOutcome, disputeNote: string | undefined): void;
}

/** Why an attempt ended before its first byte; `rejected` means the node said no. */
export class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly kind: "rejected" | "failed",
  ) {
    super(message);
  }
}

type Phase = "offered" | "accepted" | "streaming" | "ended";

export class Attempt {
  readonly wireId: string;
  readonly node: AttemptNode;
  readonly body: Record<string, unknown>;
  readonly startedAt = Date.now();
  firstByteAt?: number;
  phase: Phase = "offered";
  /** resolves on the first content (or a clean end), rejects with AttemptFailure before that */
  readonly firstByte: Promise<void>;
  /** settles once the attempt ended; never rejects */
  readonly outcome: Promise<JobOutcome>;

  private readonly sse = new SseDecoder();
  /** an embeddings answer as relayed so far */
  private raw = "";
  private readonly queue: StreamChunk[] = [];
  private wake?: () => void;
  private counted = 0;
  /** tokens the relayed multi-byte text and tool calls may have cost beyond `counted` */
  private multiByte = 0;
  /** UTF-8 bytes of the text relayed to the buyer: the ceiling on any usage report */
  private relayed = 0;
  private emptyChunks = 0;
  private reported?: Usage;
  private lastChunk?: StreamChunk;
  private firstSettled = false;
  private resolveFirst!: () => void;
  private rejectFirst!: (err: AttemptFailure) => void;
  private resolveOutcome!: (o: JobOutcome) => void;
  private readonly timers: NodeJS.Timeout[] = [];
  private idleTimer?: NodeJS.Timeout;
  /** when the last frame arrived after the first byte (the stall clock reads it when it fires) */
  private lastFrameAt = 0;

  constructor(private readonly opts: AttemptOptions) {
    this.wireId = opts.wireId;
    this.node = opts.node;
    this.body = opts.body;
    this.firstByte = new Promise<void>((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    this.firstByte.catch(() => undefined);
    this.outcome = new Promise((resolve) => (this.resolveOutcome = resolve));
  }

  get ended(): boolean {
    return this.phase === "ended";
  }

  /** a free-tier job */
  get free(): boolean {
    return this.opts.free === true;
  }

  /** content tokens relayed so far */
  get tokens(): number {
    return this.counted;
  }

  /** Sends the offer and starts the accept and first-byte clocks. */
  offer(): void {
    timeline?.("gw.offer");
    this.node.send({
      type: "job",
      job_id: this.wireId,
      model: this.opts.model,
      vram_required_mb: 0,
      buyer_region: "",
      free_tier: this.opts.free === true,
      ...(this.opts.embeddings ? { endpoint: this.opts.embeddings.endpoint } : {}),
      // Sent after the payment is held, to each node offered the job: what it could pull at once anyway.
      ...(this.node.inlineBody && (this.opts.bodyFitsInline ?? inlineBodyCheck(this.body))()
        ? { body: this.body }
        : {}),
    });
    this.timer(this.opts.acceptTimeoutMs, () => {
      if (this.phase === "offered") this.fail(`no accept within ${this.opts.acceptTimeoutMs} ms`, true);
    });
    this.timer(this.opts.firstByteTimeoutMs, () => {
      if (!this.firstSettled) this.fail(`no first token within ${this.opts.firstByteTimeoutMs} ms`, true);
    });
  }

  onAccept(): void {
    timeline?.("gw.accept");
    if (this.phase === "offered") this.phase = "accepted";
  }

  onReject(reason: string): void {
    if (this.ended) return;
    if (this.firstSettled) return this.fail(`rejected mid-stream: ${reason}`, false);
    this.end("failed", new AttemptFailure(`rejected: ${reason}`, "rejected"), false);
  }

  /** SSE text from the node; lines may be split across frames. */
  onChunk(data: string): void {
    if (this.ended) return;
    if (this.phase === "offered") this.phase = "accepted"; // a chunk is an implicit accept
    if (this.firstSettled) this.armIdle();
    if (this.opts.embeddings) {
      this.raw += data;
      if (this.raw.length > MAX_EMBEDDING_ANSWER_BYTES) this.fail("the embeddings answer is too large", true);
      return;
    }
    let payloads: string[];
    try {
      payloads = this.sse.push(data);
    } catch (err) {
      return this.fail((err as Error).message, true);
    }
    for (const p of payloads) {
      this.onPayload(p);
      if (this.ended) return;
    }
  }

  onDone(error?: string | null): void {
    if (this.ended) return;
    if (error) return this.fail(`provider error: ${error}`, false);
    if (this.opts.embeddings) return this.onEmbeddings(this.opts.embeddings.inputs);
    for (const p of this.sse.end()) {
      this.onPayload(p);
      if (this.ended) return;
    }
    // Nothing to show for it: not a billable answer, so the job moves on (or is refunded).
    if (!this.firstSettled) return this.fail("provider finished without any content", false);
    this.end("completed");
  }

  onDisconnect(why: string): void {
    this.fail(why, false);
  }

  /** The buyer went away: tell the node (`cancel`, our extension) and stop relaying. */
  cancel(why = "cancelled by the buyer"): void {
    if (this.ended) return;
    if (!this.firstSettled) return this.fail(why, true);
    this.end("cancelled", undefined, true, why);
  }

  /** Ends the attempt as failed; `tellNode` sends `cancel` so the node stops generating. */
  fail(why: string, tellNode: boolean): void {
    if (this.ended) return;
    this.end("failed", new AttemptFailure(why, "failed"), tellNode, why);
  }

  /** The whole embeddings answer arrived: checked, then delivered as one chunk (`vectors`). */
  private onEmbeddings(inputs: number): void {
    let answer;
    try {
      answer = parseEmbeddingAnswer(this.raw, inputs);
    } catch (err) {
      if (err instanceof EmbeddingAnswerError) return this.fail(err.message, false);
      throw err;
    }
    this.raw = "";
    if (answer.promptTokens !== undefined) {
      this.reported = { promptTokens: answer.promptTokens, completionTokens: 0 };
    }
    this.push({ object: "embeddings", vectors: answer.vectors });
    this.firstByteAt = Date.now();
    this.phase = "streaming";
    this.settleFirst();
    this.end("completed");
  }

  private onPayload(payload: string): void {
    if (payload.charCodeAt(0) !== 123 /* "{": the usual chunk, neither [DONE] nor blank */) {
      const t = payload.trim();
      if (t === "[DONE]" || t === "") return;
    }
    let chunk: unknown;
    try {
      chunk = JSON.parse(payload);
    } catch {
      return this.fail("the provider's stream is not valid SSE JSON", true);
    }
    if (typeof chunk !== "object" || chunk === null || Array.isArray(chunk)) {
      return this.fail("the provider's stream carries a non-object chunk", true);
    }
    const c = chunk as StreamChunk;
    const choices: unknown = c.choices;
    if (choices !== undefined && !(Array.isArray(choices) && choices.every(isObject))) {
      // Every consumer reads choices as objects: a node's `null` or `"x"` there is dropped here.
      c.choices = Array.isArray(choices) ? (choices.filter(isObject) as StreamChunk["choices"]) : [];
    }
    if (c.error !== undefined) {
      const e = c.error as { message?: unknown } | string;
      const msg = typeof e === "string" ? e : typeof e?.message === "string" ? e.message : "unknown";
      return this.fail(`backend error: ${msg.slice(0, 300)}`, false);
    }
    const usage = reportedUsage(c);
    if (usage) this.reported = usage;
    const m = measureChunk(c);
    if (m.tokens === 0) {
      if (++this.emptyChunks > MAX_EMPTY_CHUNKS) return this.fail("too many chunks without content", true);
      if (Array.isArray(c.choices) && c.choices.length > 0) this.push(c);
      return;
    }
    if (this.counted >= this.opts.maxTokens) {
      // The buyer paid for maxTokens: stop the node, close the stream as OpenAI does at the limit.
      this.push(finishChunk(this.lastChunk ?? c, this.opts.model));
      this.end("completed", undefined, true);
      return;
    }
    this.counted += m.tokens;
    this.multiByte += m.allowance;
    this.relayed += m.bytes;
    this.lastChunk = c;
    this.push(c);
    if (!this.firstSettled) {
      this.firstByteAt = Date.now();
      this.phase = "streaming";
      this.settleFirst();
      this.clearTimers();
      this.armIdle();
    }
  }

  private settleFirst(err?: AttemptFailure): void {
    if (this.firstSettled) return;
    this.firstSettled = true;
    timeline?.("gw.first");
    if (err) this.rejectFirst(err);
    else this.resolveFirst();
  }

  private timer(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  /**
   * Notes a frame for the stall clock. Called per frame, so it only stamps the time: the one timer
   * checks the stamp when it fires and sleeps again for what is left of the quiet period.
   */
  private armIdle(): void {
    this.lastFrameAt = Date.now();
    if (!this.idleTimer) this.idleAfter(this.opts.idleTimeoutMs);
  }

  private idleAfter(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = Date.now() - this.lastFrameAt;
      if (quiet >= this.opts.idleTimeoutMs)
        this.fail(`provider stalled for ${this.opts.idleTimeoutMs} ms`, true);
      else if (!this.ended) this.idleAfter(this.opts.idleTimeoutMs - quiet);
    }, ms);
    this.idleTimer.unref();
  }

  private clearTimers(): void {
    for (const t of this.timers.splice(0)) clearTimeout(t);
  }

  private push(chunk: StreamChunk): void {
    this.queue.push(chunk);
    this.wake?.();
  }

  private end(status: JobOutcome["status"], failure?: AttemptFailure, tellNode = false, why?: string): void {
    if (this.ended) return;
    this.phase = "ended";
    this.clearTimers();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (tellNode) this.node.send({ type: "cancel", job_id: this.wireId });
    const beforeFirstByte = !this.firstSettled;
    this.settleFirst(failure);
    const verdict = judgeUsage({
      reported: this.reported,
      counted: this.counted,
      multiByte: this.multiByte,
      relayed: this.relayed,
      maxTokens: this.opts.maxTokens,
      prompt: this.opts.prompt,
    });
    const outcome: JobOutcome = {
      status,
      nodeId: this.node.nodeId,
      ...(this.reported ? { reportedUsage: this.reported } : {}),
      countedCompletionTokens: Math.min(this.counted, this.opts.maxTokens),
      billableUsage: verdict.billable,
      usageDisputed: verdict.disputed,
      ...((failure?.message ?? why) ? { error: failure?.message ?? why } : {}),
    };
    // Chunks of an attempt that never reached its first byte are never shown to the buyer.
    if (beforeFirstByte && failure) this.queue.length = 0;
    this.opts.onEnd(this, outcome, verdict.note);
    this.resolveOutcome(outcome);
    this.wake?.();
  }

  /** The relayed chunks, once; leaving the loop early cancels the job. */
  chunks(): AsyncIterable<StreamChunk> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<StreamChunk>> => {
          for (;;) {
            const chunk = this.queue.shift();
            if (chunk) return { value: chunk, done: false };
            if (this.ended) return { value: undefined, done: true };
            await new Promise<void>((resolve) => (this.wake = resolve));
            this.wake = undefined;
          }
        },
        return: async (): Promise<IteratorResult<StreamChunk>> => {
          this.cancel("the consumer stopped reading");
          this.queue.length = 0;
          return { value: undefined, done: true };
        },
      }),
    };
  }
}

const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);

/** The closing chunk when the gateway cuts a stream at max_tokens. */
function finishChunk(like: StreamChunk, model: string): StreamChunk {
  return {
    ...(typeof like.id === "string" ? { id: like.id } : {}),
    object: typeof like.object === "string" ? like.object : "chat.completion.chunk",
    ...(typeof like.created === "number" ? { created: like.created } : {}),
    model,
    choices: [{ index: 0, delta: {}, finish_reason: "length" }],
  };
}
