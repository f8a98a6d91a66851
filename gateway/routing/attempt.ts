/**
 * One try of a job on one node: offer → accept → the node pulls the body → proxy_chunk frames of
 * OpenAI SSE text → proxy_done. Reassembles SSE lines split across frames, counts content itself,
 * enforces max_tokens, and cross-checks the node's usage report before anything is billed.
 */
import { randomUUID } from "node:crypto";
import type { JobOutcome, StreamChunk } from "./types.js";

/** Tolerance for a node's completion-token report against the gateway's own count. */
export function usageIsPlausible(reported: number, counted: number): boolean {
  // A content delta is usually one token, sometimes a few: allow 1.5× plus a small constant.
  return reported >= 0 && reported <= counted * 1.5 + 4;
}

export interface AttemptNode {
  nodeId: string;
  send(msg: Record<string, unknown>): void;
}

export class Attempt {
  readonly id = randomUUID();
  accepted = false;
  ended = false;
  private sseBuffer = "";
  private readonly queue: StreamChunk[] = [];
  private wake?: () => void;
  private counted = 0;
  private reported?: { promptTokens: number; completionTokens: number };
  private firstByteSettled = false;
  private resolveFirst!: () => void;
  private rejectFirst!: (err: Error) => void;
  private resolveOutcome!: (o: JobOutcome) => void;
  /** resolves on the first content (or a clean end), rejects if the node fails before that */
  readonly firstByte: Promise<void>;
  readonly outcome: Promise<JobOutcome>;

  constructor(
    readonly node: AttemptNode,
    /** the body the node pulls (stream forced on, usage included, max_tokens capped) */
    readonly body: Record<string, unknown>,
    private readonly maxTokens: number,
    private readonly promptEstimate: number,
  ) {
    this.firstByte = new Promise((res, rej) => {
      this.resolveFirst = res;
      this.rejectFirst = rej;
    });
    this.firstByte.catch(() => undefined);
    this.outcome = new Promise((res) => (this.resolveOutcome = res));
  }

  private settleFirst(err?: Error): void {
    if (this.firstByteSettled) return;
    this.firstByteSettled = true;
    if (err) this.rejectFirst(err);
    else this.resolveFirst();
  }

  get started(): boolean {
    return this.counted > 0;
  }

  onAccept(): void {
    this.accepted = true;
  }

  onReject(reason: string): void {
    this.fail(`rejected: ${reason}`);
  }

  /** Node's SSE text; lines may be split across frames. */
  onChunk(data: string): void {
    if (this.ended) return;
    this.sseBuffer += data;
    let nl = this.sseBuffer.indexOf("\n");
    while (nl >= 0) {
      const line = this.sseBuffer.slice(0, nl).trim();
      this.sseBuffer = this.sseBuffer.slice(nl + 1);
      if (line.startsWith("data:")) this.onData(line.slice(5).trim());
      if (this.ended) return;
      nl = this.sseBuffer.indexOf("\n");
    }
    if (this.sseBuffer.length > 256 * 1024) this.fail("oversized SSE line");
  }

  private onData(payload: string): void {
    if (payload === "" || payload === "[DONE]") return;
    let chunk: StreamChunk;
    try {
      chunk = JSON.parse(payload) as StreamChunk;
    } catch {
      this.fail("garbage in the stream");
      return;
    }
    if (typeof chunk !== "object" || chunk === null) return;
    if (chunk.usage && typeof chunk.usage === "object") {
      this.reported = {
        promptTokens: Math.max(0, Math.floor(Number(chunk.usage.prompt_tokens ?? 0)) || 0),
        completionTokens: Math.max(0, Math.floor(Number(chunk.usage.completion_tokens ?? 0)) || 0),
      };
    }
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    const hasContent = choices.some((c) => (c?.delta?.content ?? c?.text ?? "") !== "");
    if (hasContent) {
      if (this.counted >= this.maxTokens) {
        // The buyer paid for maxTokens: stop the node and end here.
        this.node.send({ type: "cancel", job_id: this.id });
        this.finish("completed");
        return;
      }
      this.counted++;
    }
    if (hasContent || choices.some((c) => c?.finish_reason)) this.push(chunk);
    if (hasContent) this.settleFirst();
  }

  onDone(error?: string): void {
    if (error) return this.fail(error);
    this.finish("completed");
  }

  onDisconnect(): void {
    this.fail("provider disconnected");
  }

  /** The buyer went away: tell the node (extension message) and stop relaying. */
  cancel(): void {
    if (this.ended) return;
    this.node.send({ type: "cancel", job_id: this.id });
    this.finish("cancelled");
  }

  fail(why: string): void {
    if (this.ended) return;
    this.settleFirst(new Error(why));
    this.finish("failed", why);
  }

  private push(chunk: StreamChunk): void {
    this.queue.push(chunk);
    this.wake?.();
  }

  private finish(status: JobOutcome["status"], error?: string): void {
    if (this.ended) return;
    this.ended = true;
    this.settleFirst(status === "completed" ? undefined : new Error(error ?? status));
    const counted = Math.min(this.counted, this.maxTokens);
    let billable = counted;
    let disputed = false;
    if (this.reported) {
      const r = this.reported.completionTokens;
      if (usageIsPlausible(r, counted)) billable = Math.min(r, this.maxTokens);
      else disputed = true;
    }
    const prompt = this.reported
      ? Math.min(this.reported.promptTokens, this.promptEstimate)
      : Math.ceil(this.promptEstimate / 2);
    this.resolveOutcome({
      status,
      nodeId: this.node.nodeId,
      ...(this.reported ? { reportedUsage: this.reported } : {}),
      countedCompletionTokens: counted,
      billableUsage: { promptTokens: prompt, completionTokens: billable },
      usageDisputed: disputed,
      ...(error ? { error } : {}),
    });
    this.wake?.();
  }

  async *chunks(): AsyncGenerator<StreamChunk> {
    for (;;) {
      while (this.queue.length > 0) yield this.queue.shift()!;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}
