/**
 * The gateway's own token count and the check of what a node reports. RouteCat bills the usage line
 * the node sends (only clamped), so a dishonest node can inflate it; we count what we relay instead
 * and only believe a report that is close to our count.
 */
import { promptTokenBound } from "../../src/shared/index.js";
import type { StreamChunk } from "./types.js";

/**
 * A report is believed when `reported ≤ counted × USAGE_TOLERANCE_FACTOR + USAGE_TOLERANCE_SLACK`.
 * Ollama sends one token per content delta, but tokenizers merge and split (a delta may carry two
 * tokens, an emoji may be several), and thinking models stream tokens we may not see as content, so
 * 50 % plus a few tokens of headroom keeps honest nodes undisputed while capping what an inflating
 * one gains at about half again what it delivered.
 */
export const USAGE_TOLERANCE_FACTOR = 1.5;
export const USAGE_TOLERANCE_SLACK = 4;

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

const nonEmpty = (v: unknown) => (typeof v === "string" && v !== "") || (Array.isArray(v) && v.length > 0);

/**
 * Tokens a chunk delivers by the gateway's count: one per choice whose delta carries something
 * (content, reasoning or a tool-call fragment) or whose `text` is non-empty. This approximates the
 * tokenizer (Ollama streams one token per delta; other backends may batch), which is why reports are
 * compared with a tolerance rather than for equality.
 */
export function contentTokens(chunk: StreamChunk): number {
  if (!Array.isArray(chunk.choices)) return 0;
  let n = 0;
  for (const choice of chunk.choices) {
    if (typeof choice !== "object" || choice === null) continue;
    const delta = (choice.delta ?? {}) as Record<string, unknown>;
    if (
      nonEmpty(choice.text) ||
      nonEmpty(delta.content) ||
      nonEmpty(delta.reasoning) ||
      nonEmpty(delta.reasoning_content) ||
      nonEmpty(delta.tool_calls)
    ) {
      n++;
    }
  }
  return n;
}

/**
 * The most tokens an honest node may have spent on a chunk's text, beyond `contentTokens`' one per
 * choice: a backend that streams decoded text (node-llama-cpp, llama.cpp's server) cannot emit a token
 * that ends inside a UTF-8 character, so byte-fallback tokens (emoji, rare CJK, random test models)
 * arrive merged, up to one token per byte of the multi-byte characters (an invalid byte shows as
 * U+FFFD, 3 bytes). ASCII text adds nothing here: it keeps the per-delta count and its tolerance, so an
 * inflating node gains headroom only where the delivered text could really have cost more tokens.
 */
export function multiByteAllowance(chunk: StreamChunk): number {
  if (!Array.isArray(chunk.choices)) return 0;
  let n = 0;
  for (const choice of chunk.choices) {
    if (typeof choice !== "object" || choice === null) continue;
    const delta = (choice.delta ?? {}) as Record<string, unknown>;
    let bytes = 0;
    let ascii = false;
    for (const v of [choice.text, delta.content, delta.reasoning, delta.reasoning_content]) {
      if (typeof v !== "string") continue;
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c < 0x80) ascii = true;
        else if (c < 0x800) bytes += 2;
        else if (c >= 0xd800 && c < 0xdc00) {
          bytes += 4; // a surrogate pair: one 4-byte character
          i++;
        } else bytes += 3;
      }
    }
    // The choice already counts one token; the extra is what its bytes could need beyond that.
    if (bytes > 0) n += bytes + (ascii ? 1 : 0) - 1;
  }
  return n;
}

/**
 * UTF-8 bytes of what a chunk relays to the buyer (content, reasoning, text, tool-call fragments).
 * Every token a backend generates decodes to at least one byte, so no honest completion is longer
 * in tokens than its relayed bytes: the hard ceiling on what a report can bill.
 */
export function relayedBytes(chunk: StreamChunk): number {
  if (!Array.isArray(chunk.choices)) return 0;
  let n = 0;
  for (const choice of chunk.choices) {
    if (typeof choice !== "object" || choice === null) continue;
    const delta = (choice.delta ?? {}) as Record<string, unknown>;
    for (const v of [choice.text, delta.content, delta.reasoning, delta.reasoning_content]) {
      if (typeof v === "string") n += Buffer.byteLength(v, "utf8");
    }
    if (nonEmpty(delta.tool_calls)) n += Buffer.byteLength(JSON.stringify(delta.tool_calls), "utf8");
  }
  return n;
}

/** Tokens a tool call may cost beyond its visible text: the template's call markers and JSON frame. */
export const TOOL_CALL_OVERHEAD_TOKENS = 16;

/**
 * The most tokens an honest node may have spent on a chunk's tool-call fragments beyond the one
 * `contentTokens` counts per choice: a backend such as Ollama parses the model's tool call and sends
 * it whole in one delta, so a call of hundreds of tokens arrives as one event. Its name and argument
 * text cost at most one token per UTF-8 byte, plus the markers around each call (one per new call,
 * i.e. a fragment with an `id` or a name). Only text that was really relayed earns headroom.
 */
export function toolCallAllowance(chunk: StreamChunk): number {
  if (!Array.isArray(chunk.choices)) return 0;
  let n = 0;
  for (const choice of chunk.choices) {
    if (typeof choice !== "object" || choice === null) continue;
    const calls = (choice.delta as Record<string, unknown> | undefined)?.tool_calls;
    if (!Array.isArray(calls) || calls.length === 0) continue;
    let extra = 0;
    for (const call of calls as unknown[]) {
      if (typeof call !== "object" || call === null) continue;
      const c = call as { id?: unknown; function?: { name?: unknown; arguments?: unknown } };
      const name = typeof c.function?.name === "string" ? c.function.name : "";
      const args = typeof c.function?.arguments === "string" ? c.function.arguments : "";
      extra += Buffer.byteLength(name, "utf8") + Buffer.byteLength(args, "utf8");
      if (typeof c.id === "string" || name !== "") extra += TOOL_CALL_OVERHEAD_TOKENS;
    }
    // The choice already counts one token.
    if (extra > 0) n += extra - 1;
  }
  return n;
}

/** What one relayed chunk adds to the attempt's counters. */
export interface ChunkMeasure {
  /** `contentTokens` */
  tokens: number;
  /** `multiByteAllowance + toolCallAllowance` */
  allowance: number;
  /** `relayedBytes` */
  bytes: number;
}

const NON_ASCII = /[\u0080-\uffff]/;

/**
 * `contentTokens`, `multiByteAllowance + toolCallAllowance` and `relayedBytes` of a chunk in one pass
 * (the relay's per-token path). ASCII text, the usual case, is measured by its length without
 * encoding it; anything else takes the reference functions' own path, so the answers are the same
 * (a property test holds it to them).
 */
export function measureChunk(chunk: StreamChunk): ChunkMeasure {
  const m: ChunkMeasure = { tokens: 0, allowance: 0, bytes: 0 };
  const choices = chunk.choices;
  if (!Array.isArray(choices)) return m;
  for (const choice of choices) {
    if (typeof choice !== "object" || choice === null) continue;
    const delta = choice.delta as Record<string, unknown> | undefined | null;
    const d = typeof delta === "object" && delta !== null ? delta : undefined;
    const calls = d?.tool_calls;
    const texts = [choice.text, d?.content, d?.reasoning, d?.reasoning_content];
    let carries = nonEmpty(calls);
    let ascii = true;
    for (const v of texts) {
      if (typeof v !== "string") continue;
      if (v !== "") carries = true;
      if (NON_ASCII.test(v)) ascii = false;
      else m.bytes += v.length;
    }
    if (carries) m.tokens++;
    if (!ascii) {
      // Rare: let the reference functions measure this choice's text exactly.
      const one = { choices: [{ text: choice.text, delta: { ...d, tool_calls: undefined } }] } as StreamChunk;
      m.allowance += multiByteAllowance(one);
      for (const v of texts)
        if (typeof v === "string" && NON_ASCII.test(v)) m.bytes += Buffer.byteLength(v, "utf8");
    }
    if (nonEmpty(calls)) {
      const one = { choices: [{ delta: { tool_calls: calls } }] } as StreamChunk;
      m.bytes += relayedBytes(one);
      m.allowance += toolCallAllowance(one);
    }
  }
  return m;
}

/** The usage a chunk reports, if it carries a usage object (Ollama: the last chunk before [DONE]). */
export function reportedUsage(chunk: StreamChunk): Usage | undefined {
  const u = chunk.usage;
  if (typeof u !== "object" || u === null) return undefined;
  const int = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? Math.max(0, Math.floor(v)) : 0);
  return { promptTokens: int(u.prompt_tokens), completionTokens: int(u.completion_tokens) };
}

export interface PromptBounds {
  /** the most prompt tokens a node may bill: UTF-8 size / 2 plus the chat template's tokens */
  cap: number;
  /** what to bill when the node reports nothing: UTF-8 size / 4 */
  estimate: number;
}

/**
 * Bounds on the prompt's token count from the request size (`promptTokenBound`: UTF-8 bytes / 2
 * plus the chat template's tokens, the same number the gateway quotes and holds; tool definitions
 * count too, since the template renders them into the prompt). The node's backend bills the prompt
 * as its chat template renders it, which adds role markers per message and often a default system
 * prompt (Qwen's is ~20 tokens): the cap allows for that, or an honest report on a short prompt
 * would be clipped and disputed.
 */
export function promptBounds(body: Record<string, unknown>): PromptBounds {
  const text = body.messages ?? body.prompt ?? "";
  const tools = Array.isArray(body.tools) && body.tools.length > 0 ? body.tools : undefined;
  const bytes =
    Buffer.byteLength(JSON.stringify(text), "utf8") +
    (tools ? Buffer.byteLength(JSON.stringify(tools), "utf8") : 0);
  return { cap: promptTokenBound(text, tools), estimate: Math.ceil(bytes / 4) + 4 };
}

export interface UsageVerdict {
  billable: Usage;
  disputed: boolean;
  /** why the report was not believed */
  note?: string;
}

/**
 * What to bill. Completion: the node's report clamped to [0, maxTokens] when it is within tolerance
 * of our count (plus the multi-byte allowance), else our count (clamped), disputed. Prompt: the report capped by the request-size
 * bound (a report above the bound is disputed too), or the size estimate when nothing was reported.
 * A node that under-reports only loses its own earnings, so that is not a dispute.
 */
export function judgeUsage(input: {
  reported?: Usage;
  counted: number;
  /**
   * the sum of `multiByteAllowance` and `toolCallAllowance` over the relayed chunks (0 when all
   * text was ASCII and no tool was called)
   */
  multiByte?: number;
  /** the sum of `relayedBytes` over the relayed chunks: no report bills more tokens than this */
  relayed?: number;
  maxTokens: number;
  prompt: PromptBounds;
}): UsageVerdict {
  const maxTokens = Math.max(0, input.maxTokens);
  const counted = Math.min(Math.max(0, input.counted), maxTokens);
  const r = input.reported;
  if (!r) {
    return {
      billable: {
        promptTokens: Math.min(input.prompt.estimate, input.prompt.cap),
        completionTokens: counted,
      },
      disputed: false,
    };
  }
  const notes: string[] = [];
  let completionTokens: number;
  const multiByte = Math.max(0, input.multiByte ?? 0);
  // What was relayed bounds every report: a token is at least one byte of the text the buyer got.
  const ceiling = Math.min(maxTokens, input.relayed ?? Number.POSITIVE_INFINITY);
  if (
    r.completionTokens <= counted * USAGE_TOLERANCE_FACTOR + USAGE_TOLERANCE_SLACK + multiByte &&
    r.completionTokens <= (input.relayed ?? Number.POSITIVE_INFINITY) + USAGE_TOLERANCE_SLACK
  ) {
    completionTokens = Math.min(r.completionTokens, ceiling);
  } else {
    completionTokens = counted;
    notes.push(
      `reported ${r.completionTokens} completion tokens, counted ${counted}` +
        (multiByte > 0 ? ` (+${multiByte} allowed for multi-byte text and tool calls)` : "") +
        (input.relayed !== undefined ? ` in ${input.relayed} bytes relayed` : ""),
    );
  }
  const promptTokens = Math.min(r.promptTokens, input.prompt.cap);
  if (r.promptTokens > input.prompt.cap) {
    notes.push(`reported ${r.promptTokens} prompt tokens, at most ${input.prompt.cap} plausible`);
  }
  return {
    billable: { promptTokens, completionTokens },
    disputed: notes.length > 0,
    ...(notes.length > 0 ? { note: notes.join("; ") } : {}),
  };
}
