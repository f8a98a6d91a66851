/**
 * Running one accepted job: pull its body from the gateway, call the backend, and relay the stream
 * as `proxy_chunk` frames (batched by FrameBatcher) ending in `proxy_done`. Enforces the node's
 * token cap and makes every stream end with a finish reason, a usage chunk and `[DONE]`.
 */
import type { WebSocket } from "ws";
import { type Backend, type Chunk, ChunkFactory, type Usage } from "./backends/types.js";
import { timeline } from "../src/shared/index.js";
import { embeddingAnswer } from "./embed-job.js";
import { FrameBatcher } from "./frames.js";
import { JobBody, type NodeMessage } from "./protocol.js";
import { errorText } from "./registration.js";
import type { NodeStats } from "./stats.js";

/** The stop reason of a job the gateway cancelled (the only stop that is not a failure). */
export const CANCELLED = "cancelled by the gateway";

export interface Job {
  id: string;
  model: string;
  ws: WebSocket;
  abort: AbortController;
  /** why it stopped early: the gateway cancelled, the connection dropped, the node shut down */
  stopped?: string;
  started: number;
  /** the body the offer carried (`inline_job_body`); absent: pull it */
  body?: unknown;
}

/** What a job needs from its node. */
export interface JobContext {
  gateway: string;
  apiKey: string;
  backend: Backend;
  /** body-pull timeout */
  timeoutMs: number;
  maxTokensCap: number;
  relayWindowMs: number;
  send(msg: NodeMessage, ws: WebSocket): void;
}

export function stopJob(job: Job, why: string): void {
  job.stopped ??= why;
  job.abort.abort();
}

/** proxy_done for a job stopped early: an error unless the gateway itself cancelled it */
export function doneMessage(job: Job): NodeMessage {
  return job.stopped && job.stopped !== CANCELLED
    ? { type: "proxy_done", job_id: job.id, error: job.stopped }
    : { type: "proxy_done", job_id: job.id };
}

function contentPieces(chunk: Chunk): number {
  let n = 0;
  for (const c of chunk.choices) {
    if ("text" in c ? c.text : c.delta.content || c.delta.reasoning_content || c.delta.tool_calls?.length)
      n++;
  }
  return n;
}

const short = (id: string) => id.slice(0, 8);

/**
 * Runs an accepted job to its end: the stream and proxy_done (an error one when it failed or was
 * stopped by anything but the gateway), the counts in `stats` and one status line.
 */
export async function runJob(
  ctx: JobContext,
  job: Job,
  embeds: boolean,
  stats: NodeStats,
  status: (line: string) => void,
): Promise<void> {
  try {
    const usage = embeds ? await serveEmbeddings(ctx, job) : await serveCompletion(ctx, job);
    stats.jobs++;
    stats.tokens += usage.completion_tokens;
    stats.promptTokens += usage.prompt_tokens;
    const ms = Date.now() - job.started;
    const rate = ms > 0 ? Math.round((usage.completion_tokens * 1000) / ms) : 0;
    if (job.stopped) stats.cancelled++;
    status(
      `job ${short(job.id)} ${job.model} ${usage.completion_tokens} tokens in ${ms} ms ` +
        `(${rate} tok/s, prompt ${usage.prompt_tokens})${job.stopped ? ` stopped: ${job.stopped}` : ""}`,
    );
  } catch (err) {
    if (job.stopped) {
      // stopped before the stream began (e.g. cancelled during the body pull)
      stats.jobs++;
      stats.cancelled++;
      ctx.send(doneMessage(job), job.ws);
      status(`job ${short(job.id)} ${job.model} 0 tokens stopped: ${job.stopped}`);
      return;
    }
    const message = (err as Error).message ?? String(err);
    stats.failed++;
    ctx.send({ type: "proxy_done", job_id: job.id, error: message.slice(0, 500) }, job.ws);
    status(`job ${short(job.id)} ${job.model} failed: ${message}`);
  }
}

/** The job's body: from the offer when the gateway sent it there, else pulled over HTTP. */
async function pullBody(ctx: JobContext, job: Job): Promise<unknown> {
  if (job.body !== undefined) return job.body;
  const res = await fetch(`${ctx.gateway}/v1/gateway/jobs/${encodeURIComponent(job.id)}/proxy/request`, {
    headers: { authorization: `Bearer ${ctx.apiKey}` },
    signal: AbortSignal.any([job.abort.signal, AbortSignal.timeout(ctx.timeoutMs)]),
  });
  if (!res.ok) throw new Error(`body pull failed (HTTP ${res.status}): ${await errorText(res)}`);
  return res.json().catch(() => undefined);
}

/**
 * An embedding job: pulls the OpenAI embeddings body, embeds with the backend and relays the
 * `/v1/embeddings` JSON answer as text in proxy_chunk frames, then proxy_done.
 */
async function serveEmbeddings(ctx: JobContext, job: Job): Promise<Usage> {
  const pulled = await pullBody(ctx, job);
  const { frames, usage } = await embeddingAnswer(ctx.backend, job.model, pulled, job.abort.signal);
  if (job.stopped) throw new Error(job.stopped);
  for (const data of frames) ctx.send({ type: "proxy_chunk", job_id: job.id, data }, job.ws);
  ctx.send({ type: "proxy_done", job_id: job.id }, job.ws);
  return usage;
}

/** Pulls the job's body, runs it and relays the stream; returns the usage served. */
async function serveCompletion(ctx: JobContext, job: Job): Promise<Usage> {
  const parsed = JobBody.safeParse(await pullBody(ctx, job));
  timeline?.("p.body");
  if (!parsed.success) throw new Error(`unusable job body: ${parsed.error.issues[0]?.message}`);
  const body = parsed.data;
  const cap = ctx.maxTokensCap;
  const asked = body.max_tokens ?? body.max_completion_tokens;
  const maxTokens = Math.min(
    cap,
    typeof asked === "number" && Number.isSafeInteger(asked) && asked > 0 ? asked : cap,
  );
  const streamOptions =
    typeof body.stream_options === "object" && body.stream_options ? body.stream_options : {};
  const request = {
    ...body,
    model: job.model,
    stream: true,
    stream_options: { ...streamOptions, include_usage: true },
    max_tokens: maxTokens,
    ...(body.max_completion_tokens != null ? { max_completion_tokens: maxTokens } : {}),
  };
  const kind = Array.isArray(body.messages) ? "chat" : "completions";
  timeline?.("p.backend");
  const stream: AsyncIterable<Chunk> =
    kind === "chat"
      ? ctx.backend.chat({ ...request, messages: body.messages ?? [] }, job.abort.signal)
      : ctx.backend.complete({ ...request, prompt: body.prompt ?? "" }, job.abort.signal);

  // timeline: the first frame that carries content
  const seen = { token: false, frame: false };
  const frames = new FrameBatcher((data) => {
    ctx.send({ type: "proxy_chunk", job_id: job.id, data }, job.ws);
    if (timeline && seen.token && !seen.frame) {
      seen.frame = true;
      timeline("p.frame");
    }
  }, ctx.relayWindowMs);
  try {
    return await relayStream(ctx, job, kind, stream, maxTokens, frames, seen);
  } finally {
    frames.flush(); // what was generated goes out before any proxy_done the caller sends
  }
}

async function relayStream(
  ctx: JobContext,
  job: Job,
  kind: "chat" | "completions",
  stream: AsyncIterable<Chunk>,
  maxTokens: number,
  frames: FrameBatcher,
  seen: { token: boolean },
): Promise<Usage> {
  const relay = (chunk: Chunk, now = false) => frames.push(`data: ${JSON.stringify(chunk)}\n\n`, now);
  let delivered = 0;
  let overLimit = false;
  let finished = false;
  let usage: Usage | undefined;
  let last: Chunk | undefined;
  for await (const chunk of stream) {
    if (job.stopped) break;
    last = chunk;
    const pieces = contentPieces(chunk);
    if (pieces > 0 && delivered + pieces > maxTokens) {
      // The backend ignored max_tokens: stop it and drop the excess.
      overLimit = true;
      job.abort.abort();
      continue;
    }
    delivered += pieces;
    const firstContent = pieces > 0 && !seen.token;
    if (firstContent) {
      seen.token = true;
      timeline?.("p.token");
    }
    if (chunk.usage) {
      usage = { ...chunk.usage };
      usage.completion_tokens = Math.min(usage.completion_tokens, maxTokens);
      usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
      chunk.usage = usage;
    }
    if (chunk.choices.some((c) => c.finish_reason)) {
      finished = true;
      if (overLimit) for (const c of chunk.choices) c.finish_reason = "length";
    }
    // The first token is what the buyer waits for: it never waits out the batching window (the
    // role chunk before it usually just opened one).
    relay(chunk, firstContent);
  }
  if (job.stopped) {
    frames.flush();
    ctx.send(doneMessage(job), job.ws);
    return usage ?? { prompt_tokens: 0, completion_tokens: delivered, total_tokens: delivered };
  }
  // Every stream ends with a finish reason, a usage chunk and [DONE], whatever the backend sent.
  const make = new ChunkFactory<"chat" | "completions">(kind, job.model);
  const same = (c: Chunk) => (last ? { ...c, id: last.id, created: last.created } : c);
  if (!finished) relay(same(make.finish(overLimit ? "length" : "stop")));
  if (!usage) {
    usage = { prompt_tokens: 0, completion_tokens: delivered, total_tokens: delivered };
    relay(same(make.usage(0, delivered)));
  }
  frames.push("data: [DONE]\n\n");
  frames.flush();
  ctx.send({ type: "proxy_done", job_id: job.id }, job.ws);
  return usage;
}
