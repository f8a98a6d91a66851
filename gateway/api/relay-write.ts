/**
 * What the response writers of relayed streams share: the per-turn cork, the spliced OpenAI event,
 * the plain SSE event, Owlrun's fields on a stream line, and the collector the non-streaming answers
 * drain a job into.
 */
import type { Response } from "express";
import type { StreamChunk } from "../routing/index.js";
import { ToolCallCollector } from "./tools.js";
import { type ChatDeps, type PaidJob, settleOutcome } from "./paid-job.js";

/** Accumulates a stream into one OpenAI response object for non-streaming clients. */
export class Collector {
  text = "";
  finishReason: string | null = null;
  id?: string;
  created?: number;
  readonly tools = new ToolCallCollector();
  add(chunk: StreamChunk) {
    this.id ??= chunk.id as string | undefined;
    this.created ??= chunk.created as number | undefined;
    for (const c of chunk.choices ?? []) {
      this.text += c.delta?.content ?? c.text ?? "";
      this.tools.add(c.delta?.tool_calls);
      if (c.finish_reason) this.finishReason = c.finish_reason;
    }
  }
  /** True when nothing at all was delivered (no text, no tool call). */
  get empty(): boolean {
    return this.text === "" && this.tools.calls.length === 0;
  }
}

export function sse(res: Response, data: unknown) {
  res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

/**
 * Owlrun's fields on a stream line (`message.content`, `done`), carried next to OpenAI's `choices`
 * so the seed's Owlrun clients and the `openai` SDK both read the answer with no opt-in.
 */
export function owlrunLine(choices: StreamChunk["choices"], done: boolean) {
  const content = (choices ?? []).map((c) => c.delta?.content ?? c.text ?? "").join("");
  return { message: { role: "assistant", content }, done };
}

/**
 * The chunks of one provider frame arrive in one event-loop turn: they leave in one socket write
 * (one write per token was the relay's top cost). `hold()` before each write, `release()` at the end.
 * The chunks reach the writer through promise jobs of that same turn, so the cork is lifted on the
 * next tick (after those jobs), not by a timer: a token alone in its turn costs no extra callback.
 */
export function turnCork(res: Response): { hold(): void; release(): void } {
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    res.uncork();
  };
  return {
    hold() {
      if (corked) return;
      corked = true;
      res.cork();
      process.nextTick(uncork);
    },
    release: uncork,
  };
}

/** The constant start of every relayed event of one response (see `relayedEvent`). */
export function relayedEventHead(id: string, object: string, created: number, model: string): string {
  return `data: {"id":${JSON.stringify(id)},"object":${JSON.stringify(object)},"created":${created},"model":${JSON.stringify(model)},"choices":`;
}

/**
 * One OpenAI stream event of relayed choices, byte for byte what `JSON.stringify` makes of
 * `{id, object, created, model, choices, message, done: false}`, with the constant head built once
 * per response: only the choices and the text are serialised per chunk.
 */
export function relayedEvent(head: string, choices: NonNullable<StreamChunk["choices"]>): string {
  const content = choices.map((c) => c.delta?.content ?? c.text ?? "").join("");
  return `${head}${JSON.stringify(choices)},"message":{"role":"assistant","content":${JSON.stringify(content)}},"done":false}\n\n`;
}

/** Drains a job into one answer, settles it and sets the payment headers (the non-streaming answers). */
export async function collectAndSettle(
  res: Response,
  { job, payment, model, startedAt }: PaidJob,
  deps: ChatDeps,
) {
  const collector = new Collector();
  for await (const chunk of job.chunks) collector.add(chunk);
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
  res.setHeader("X-Cost-Sats", String(settled.chargedSat));
  return { collector, outcome, settled };
}
