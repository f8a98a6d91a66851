/**
 * Writes a relayed job as Anthropic's answer: one message object, or (stream) the documented event
 * sequence. Text deltas become `text_delta`s of a text block; each provider tool call opens a
 * `tool_use` block whose argument fragments are relayed as `input_json_delta`s unchanged. Money is
 * settled exactly as on the OpenAI routes (`settleOutcome`); the receipt and the X-Cashu change
 * follow `message_stop` as extra events (`owlrun_payment`, `cashu_change`) that Anthropic clients
 * ignore, and ride in `X-Cashu-Change` / the body's `payment` when not streaming.
 */
import type { Response } from "express";
import {
  type ChatDeps,
  Collector,
  collectAndSettle,
  type PaidJob,
  settleOutcome,
  turnCork,
} from "../chat.js";
import { toolDeltas } from "../tools.js";
import type { StreamChunk } from "../../routing/types.js";
import { anthropicError, messageId, outputBlocks, stopReason, toolUseId } from "./translate.js";

export interface AnthropicContext {
  stream: boolean;
  /** the name the client asked for (echoed back, also when an alias served it) */
  model: string;
  /** the prompt estimate, for message_start (the billed count comes in message_delta) */
  inputEstimate: number;
}

function event(res: Response, type: string, data: Record<string, unknown>) {
  res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

function receipt(paid: PaidJob, settled: { chargedSat: number; changeSat: number }) {
  return {
    method: paid.payment.method,
    amount_sats: settled.chargedSat,
    change_sats: settled.changeSat,
    request_id: paid.payment.holdId,
    ...paid.payment.receiptFields,
  };
}

/** Turns provider chunks into content-block events, one block open at a time. */
class BlockWriter {
  private index = -1;
  private open: "text" | "tool_use" | undefined;
  /** the provider's tool-call index → our block index */
  private readonly toolBlocks = new Map<number, number>();
  private readonly collector = new Collector();

  constructor(private readonly res: Response) {}

  add(chunk: StreamChunk): void {
    for (const c of chunk.choices ?? []) {
      const text = c.delta?.content ?? "";
      if (text !== "") {
        if (this.open !== "text") this.start("text", { type: "text", text: "" });
        event(this.res, "content_block_delta", {
          index: this.index,
          delta: { type: "text_delta", text },
        });
      }
    }
    const deltas = toolDeltas(chunk);
    for (const { index, call, fragment } of this.collector.tools.add(deltas)) {
      let block = this.toolBlocks.get(index);
      if (block === undefined) {
        this.start("tool_use", {
          type: "tool_use",
          id: toolUseId(call.id),
          name: call.function.name,
          input: {},
        });
        block = this.index;
        this.toolBlocks.set(index, block);
      }
      if (fragment !== "") {
        event(this.res, "content_block_delta", {
          index: block,
          delta: { type: "input_json_delta", partial_json: fragment },
        });
      }
    }
    for (const c of chunk.choices ?? []) if (c.finish_reason) this.collector.finishReason = c.finish_reason;
  }

  get finishReason(): string | null {
    return this.collector.finishReason;
  }

  get calledTools(): boolean {
    return this.collector.tools.calls.length > 0;
  }

  close(): void {
    if (this.open) event(this.res, "content_block_stop", { index: this.index });
    this.open = undefined;
  }

  private start(kind: "text" | "tool_use", block: Record<string, unknown>): void {
    this.close();
    this.index++;
    this.open = kind;
    event(this.res, "content_block_start", { index: this.index, content_block: block });
  }
}

export async function anthropicResponse(
  res: Response,
  paid: PaidJob,
  deps: ChatDeps,
  ctx: AnthropicContext,
): Promise<void> {
  if (!ctx.stream) return jsonAnswer(res, paid, deps, ctx);
  const { job, payment, model, startedAt } = paid;
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("Connection", "keep-alive");
  res.flushHeaders();
  const id = messageId();
  event(res, "message_start", {
    message: {
      id,
      type: "message",
      role: "assistant",
      model: ctx.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: ctx.inputEstimate, output_tokens: 0 },
    },
  });
  event(res, "ping", {});
  const blocks = new BlockWriter(res);
  const cork = turnCork(res);
  for await (const chunk of job.chunks) {
    if (res.destroyed) continue; // keep draining so the outcome settles
    cork.hold();
    blocks.add(chunk);
  }
  cork.release();
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (res.destroyed) return; // change is stored server-side under X-Owlrun-Request-Id
  blocks.close();
  const usage = outcome.billableUsage;
  const change = () => {
    event(res, "owlrun_payment", { payment: receipt(paid, settled) });
    if (settled.changeSat > 0 || settled.changeToken) {
      event(res, "cashu_change", { token: settled.changeToken ?? "", change_sats: settled.changeSat });
    }
  };
  if (outcome.status === "failed") {
    // The change first: the SDK throws on `error` and reads no further.
    change();
    const err = anthropicError(
      502,
      "provider_failed",
      `the provider failed mid-stream: ${outcome.error ?? "unknown"}; you were not charged`,
      {},
    ) as Record<string, unknown>;
    res.end(`event: error\ndata: ${JSON.stringify(err)}\n\n`);
    return;
  }
  event(res, "message_delta", {
    delta: { stop_reason: stopReason(blocks.finishReason, blocks.calledTools), stop_sequence: null },
    usage: { input_tokens: usage.promptTokens, output_tokens: usage.completionTokens },
  });
  event(res, "message_stop", {});
  change();
  res.end();
}

async function jsonAnswer(res: Response, paid: PaidJob, deps: ChatDeps, ctx: AnthropicContext) {
  const { collector, outcome, settled } = await collectAndSettle(res, paid, deps);
  if (outcome.status === "failed" && collector.empty) {
    res
      .status(502)
      .json(anthropicError(502, "provider_failed", `the provider failed: ${outcome.error ?? "unknown"}`, {}));
    return;
  }
  const calls = collector.tools.calls;
  const usage = outcome.billableUsage;
  res.json({
    id: messageId(),
    type: "message",
    role: "assistant",
    model: ctx.model,
    content: outputBlocks(collector.text, calls),
    stop_reason: stopReason(collector.finishReason, calls.length > 0),
    stop_sequence: null,
    usage: { input_tokens: usage.promptTokens, output_tokens: usage.completionTokens },
    payment: receipt(paid, settled),
  });
}
