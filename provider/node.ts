/**
 * An Owlrun provider node: dials out to a gateway (no open port needed), registers its models over
 * HTTP, holds the WebSocket, and serves jobs from its backend by relaying OpenAI SSE text in
 * `proxy_chunk` frames. Speaks shared/protocols/owlrun-node.md exactly; `cancel` is our additive
 * extension, and unknown message types and fields are ignored.
 */
import { WebSocket } from "ws";
import type { Logger } from "../src/shared/index.js";
import { type Backend, type Chunk, ChunkFactory, type Usage } from "./backends/types.js";
import { embeddingAnswer } from "./embed-job.js";
import {
  type HeartbeatAck,
  EMBEDDINGS_ENDPOINT,
  JobBody,
  type JobMessage,
  type NodeMessage,
  parseGatewayFrame,
  type RegisterBody,
  MAX_CHUNK_BYTES,
  splitUtf8,
  type WithdrawRecord,
} from "./protocol.js";

/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 10_000;
/** The stop reason of a job the gateway cancelled (the only stop that is not a failure). */
const CANCELLED = "cancelled by the gateway";

export interface NodeOptions {
  /** base URL, e.g. http://127.0.0.1:8402 */
  gateway: string;
  apiKey: string;
  nodeId: string;
  backend: Backend;
  /** node version string sent on registration */
  version: string;
  lightningAddress?: string;
  /** reported on registration (Owlrun nodes send theirs) */
  ollamaUrl?: string;
  region?: string;
  /** `free_tier_pct` at registration: > 0 takes free-tier jobs (karma, not sats) */
  freeTierPct?: number;
  /** heartbeat period; default 30 s (Owlrun) */
  heartbeatMs?: number;
  /** reconnect backoff bounds; default 1 s → 30 s */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** jobs served at once; more are rejected with "busy". Default 8 */
  maxJobs?: number;
  /** the most tokens one job may generate, whatever it asks; default 32768 */
  maxTokensCap?: number;
  /**
   * Coalescing window for a job's `proxy_chunk` frames: a chunk after a quiet spell goes out at once,
   * a fast stream sends at most one frame per window (default 2 ms; 0 sends every chunk on its own).
   */
  relayWindowMs?: number;
  /** register and body-pull timeout; default 10 s */
  requestTimeoutMs?: number;
  /** one line per job (default: the logger at info) */
  onStatus?: (line: string) => void;
  log: Logger;
}

export interface LastPayout {
  sats: number;
  paymentHash?: string;
  at?: string;
}

export interface NodeStats {
  /** jobs that ran (completed or cancelled) */
  jobs: number;
  cancelled: number;
  failed: number;
  rejected: number;
  /** completion tokens served */
  tokens: number;
  promptTokens: number;
  /** from the gateway's last heartbeat_ack */
  earnedTodaySats: number;
  earnedTotalSats: number;
  balanceSats: number;
  /** summed from job_complete */
  earnedUsd: number;
  /** the newest entry of the gateway's withdraw_history */
  lastPayout?: LastPayout;
  reconnects: number;
}

interface Job {
  id: string;
  model: string;
  ws: WebSocket;
  abort: AbortController;
  /** why it stopped early: the gateway cancelled, the connection dropped, the node shut down */
  stopped?: string;
  started: number;
}

/** Exponential backoff with equal jitter: half the step fixed, half random. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const step = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + random() * (step / 2));
}

class RegistrationError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
  /** a refusal that retrying will not fix */
  get fatal(): boolean {
    return [400, 401, 403, 404].includes(this.status);
  }
}

/** The message of a gateway error body: `{"error":{"message"}}`, `{"error":"…"}` or text. */
async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const j = JSON.parse(text) as { error?: string | { message?: string }; message?: string };
    const e = typeof j.error === "string" ? j.error : (j.error?.message ?? j.message);
    if (e) return String(e).slice(0, 300);
  } catch {
    // not JSON
  }
  return text.slice(0, 300) || `HTTP ${res.status}`;
}

const short = (id: string) => id.slice(0, 8);

function contentPieces(chunk: Chunk): number {
  let n = 0;
  for (const c of chunk.choices) {
    if ("text" in c ? c.text : c.delta.content || c.delta.reasoning_content || c.delta.tool_calls?.length)
      n++;
  }
  return n;
}

function payoutOf(history: WithdrawRecord[]): LastPayout | undefined {
  const time = (r: WithdrawRecord) => {
    const t = r.timestamp;
    if (typeof t === "number") return t < 1e12 ? t * 1000 : t;
    const ms = t ? Date.parse(t) : NaN;
    return Number.isNaN(ms) ? 0 : ms;
  };
  const last = history.reduce<WithdrawRecord | undefined>(
    (best, r) => (!best || time(r) >= time(best) ? r : best),
    undefined,
  );
  if (!last) return undefined;
  const ms = time(last);
  return {
    sats: Math.floor((last.amount_sats ?? 0) / 1000),
    ...(last.payment_hash ? { paymentHash: last.payment_hash } : {}),
    ...(ms ? { at: new Date(ms).toISOString() } : {}),
  };
}

export class ProviderNode {
  private ws?: WebSocket;
  private closed = false;
  private draining = false;
  private everConnected = false;
  private attempt = 0;
  private openedAt = 0;
  private lastHeard = 0;
  private heartbeat?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private models = new Set<string>();
  private embedModels = new Set<string>();
  private registeredModels = "";
  private readonly seenBroadcasts = new Set<string>();
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Set<Promise<void>>();
  private firstConnect?: { resolve: () => void; reject: (e: Error) => void };
  readonly stats: NodeStats = {
    jobs: 0,
    cancelled: 0,
    failed: 0,
    rejected: 0,
    tokens: 0,
    promptTokens: 0,
    earnedTodaySats: 0,
    earnedTotalSats: 0,
    balanceSats: 0,
    earnedUsd: 0,
    reconnects: 0,
  };

  constructor(private readonly opts: NodeOptions) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** jobs in flight */
  get load(): number {
    return this.jobs.size;
  }

  /**
   * Registers and connects; resolves once connected the first time. Rejects when the gateway
   * refuses the first registration (bad key, bad Lightning address, not a gateway); network
   * failures are retried with backoff, before and after the first connection.
   */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      void this.connect();
    });
  }

  /** Stops taking jobs, ends the ones in flight (proxy_done with an error) and closes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    this.firstConnect?.reject(new Error("provider node closed"));
    this.firstConnect = undefined;
    for (const job of this.jobs.values()) this.stop(job, "node shutting down");
    await Promise.all(this.running);
    const ws = this.ws;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
          resolve();
        }, 1000);
        ws.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1001, "node shutting down");
      });
    }
  }

  private get timeoutMs(): number {
    return this.opts.requestTimeoutMs ?? 10_000;
  }

  private async refreshModels(): Promise<string[]> {
    const list = [...new Set(await this.opts.backend.listModels())].sort();
    this.models = new Set(list);
    const embed = this.opts.backend.embed ? ((await this.opts.backend.listEmbeddingModels?.()) ?? []) : [];
    this.embedModels = new Set(embed);
    return list;
  }

  /** What registration announces and a change of which means registering again. */
  private get announced(): string {
    return `${[...this.models].join("\n")}|${[...this.embedModels].sort().join("\n")}`;
  }

  private async register(): Promise<void> {
    const models = await this.refreshModels();
    const body: RegisterBody = {
      node_id: this.opts.nodeId,
      api_key: this.opts.apiKey,
      gpu: "cpu",
      gpu_vendor: "none",
      vram_total_mb: 0,
      vram_free_mb: 0,
      vram_exact: false,
      models,
      ...(this.embedModels.size ? { embedding_models: [...this.embedModels].sort() } : {}),
      ollama_url: this.opts.ollamaUrl ?? "",
      region: this.opts.region ?? "",
      ...(this.opts.lightningAddress ? { lightning_address: this.opts.lightningAddress } : {}),
      ...(this.opts.freeTierPct ? { free_tier_pct: this.opts.freeTierPct } : {}),
      version: this.opts.version,
    };
    const res = await fetch(`${this.opts.gateway}/v1/gateway/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.opts.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    if (!res.ok) {
      throw new RegistrationError(
        `the gateway refused registration (HTTP ${res.status}): ${await errorText(res)}`,
        res.status,
      );
    }
    await res.body?.cancel();
    this.registeredModels = this.announced;
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      await this.register();
    } catch (err) {
      if (this.closed) return;
      if (err instanceof RegistrationError && err.fatal && !this.everConnected) {
        this.closed = true;
        this.firstConnect?.reject(err);
        this.firstConnect = undefined;
        return;
      }
      return this.scheduleReconnect(`registration failed: ${(err as Error).message}`);
    }
    if (this.closed) return;
    const url = new URL(`${this.opts.gateway.replace(/^http/, "ws")}/v1/gateway/ws`);
    url.searchParams.set("api_key", this.opts.apiKey);
    const ws = new WebSocket(url, { maxPayload: 1024 * 1024, handshakeTimeout: this.timeoutMs });
    this.ws = ws;
    let failure = "connection closed";
    ws.on("open", () => this.onOpen(ws));
    ws.on("message", (raw, isBinary) => {
      this.lastHeard = Date.now();
      if (isBinary) return this.opts.log.warn("dropped a binary frame from the gateway");
      this.onMessage(raw.toString());
    });
    ws.on("pong", () => {
      this.lastHeard = Date.now();
    });
    ws.on("error", (err) => {
      failure = err.message;
    });
    ws.on("close", (code) => {
      if (this.ws !== ws) return;
      clearInterval(this.heartbeat);
      for (const job of this.jobs.values()) if (job.ws === ws) this.stop(job, "gateway connection lost");
      if (this.closed) return;
      if (this.openedAt && Date.now() - this.openedAt >= STABLE_MS) this.attempt = 0;
      const was = this.openedAt ? `connection lost (code ${code})` : `WebSocket failed: ${failure}`;
      this.openedAt = 0;
      this.scheduleReconnect(was);
    });
  }

  private onOpen(ws: WebSocket): void {
    if (this.closed) return void ws.close(1001);
    this.openedAt = this.lastHeard = Date.now();
    if (this.everConnected) this.stats.reconnects++;
    this.everConnected = true;
    this.draining = false; // a fresh session: drain was the old gateway's maintenance
    this.opts.log.info("connected to gateway", {
      gateway: this.opts.gateway,
      node: this.opts.nodeId,
      models: [...this.models],
    });
    this.sendHeartbeat();
    clearInterval(this.heartbeat);
    const every = this.opts.heartbeatMs ?? 30_000;
    this.heartbeat = setInterval(() => void this.tick(ws, every), every);
    this.firstConnect?.resolve();
    this.firstConnect = undefined;
  }

  /** Heartbeat; liveness (a gateway silent for 3 periods is dropped); re-register when models change. */
  private async tick(ws: WebSocket, every: number): Promise<void> {
    if (this.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastHeard > 3 * every) {
      this.opts.log.warn("gateway silent; reconnecting");
      return void ws.terminate();
    }
    ws.ping();
    this.sendHeartbeat();
    try {
      const before = this.registeredModels;
      await this.refreshModels();
      if (this.announced !== before) {
        await this.register();
        this.opts.log.info("models changed; registered again", { models: [...this.models] });
      }
    } catch (err) {
      this.opts.log.warn("could not update the model list at the gateway", { err: String(err) });
    }
  }

  private scheduleReconnect(why: string): void {
    if (this.closed) return;
    clearTimeout(this.reconnectTimer);
    const delay = backoffDelay(
      this.attempt++,
      this.opts.minBackoffMs ?? 1000,
      this.opts.maxBackoffMs ?? 30_000,
    );
    this.opts.log.warn(`${why}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private send(msg: NodeMessage, ws = this.ws): void {
    if (ws?.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  private sendHeartbeat(): void {
    this.send({
      type: "heartbeat",
      gpu_util_pct: 0,
      vram_free_mb: 0,
      temp_c: 0,
      power_w: 0,
      queue_depth: this.jobs.size,
      earning_state: this.draining ? "draining" : this.jobs.size > 0 ? "earning" : "idle",
    });
  }

  private onMessage(raw: string): void {
    const frame = parseGatewayFrame(raw);
    if (frame.kind === "ignore") return this.opts.log.debug("ignored a message type", { type: frame.type });
    if (frame.kind === "invalid")
      return this.opts.log.warn("dropped a bad frame from the gateway", { why: frame.why });
    const msg = frame.msg;
    switch (msg.type) {
      case "ping":
        return this.send({ type: "pong" });
      case "drain":
        if (!this.draining) this.opts.log.warn("the gateway asked to drain: taking no new jobs");
        this.draining = true;
        return;
      case "cancel": {
        const job = this.jobs.get(msg.job_id);
        if (job) this.stop(job, CANCELLED);
        return;
      }
      case "heartbeat_ack":
        return this.onAck(msg);
      case "job_complete":
        this.stats.earnedUsd += msg.earned_usd ?? 0;
        this.opts.log.debug("job settled", {
          job: msg.job_id,
          tokens: msg.tokens,
          earned_usd: msg.earned_usd,
        });
        return;
      case "job": {
        const p = this.onJob(msg).catch((err) =>
          this.opts.log.error("job handler failed", { err: String(err) }),
        );
        this.running.add(p);
        void p.finally(() => this.running.delete(p));
        return;
      }
    }
  }

  private onAck(msg: HeartbeatAck): void {
    const s = this.stats;
    s.earnedTodaySats = msg.earned_today_sats ?? s.earnedTodaySats;
    s.earnedTotalSats = msg.earned_total_sats ?? s.earnedTotalSats;
    s.balanceSats = msg.balance_sats ?? s.balanceSats;
    const payout = msg.withdraw_history?.length ? payoutOf(msg.withdraw_history) : undefined;
    if (payout) s.lastPayout = payout;
    for (const b of msg.broadcasts ?? []) {
      const key = String(b.id ?? `${b.title}|${b.message}`);
      if (this.seenBroadcasts.has(key)) continue;
      this.seenBroadcasts.add(key);
      this.opts.log.info(`gateway broadcast: ${b.title ?? ""}${b.message ? `: ${b.message}` : ""}`, {
        severity: b.severity,
      });
    }
  }

  private status(line: string): void {
    if (this.opts.onStatus) this.opts.onStatus(line);
    else this.opts.log.info(line);
  }

  /** proxy_done for a job stopped early: an error unless the gateway itself cancelled it */
  private done(job: Job): NodeMessage {
    return job.stopped && job.stopped !== CANCELLED
      ? { type: "proxy_done", job_id: job.id, error: job.stopped }
      : { type: "proxy_done", job_id: job.id };
  }

  private stop(job: Job, why: string): void {
    job.stopped ??= why;
    job.abort.abort();
  }

  private async onJob(msg: JobMessage): Promise<void> {
    const ws = this.ws;
    if (!ws || this.jobs.has(msg.job_id) || this.closed) return;
    const embeds = msg.endpoint === EMBEDDINGS_ENDPOINT;
    const reason = this.draining
      ? "draining"
      : msg.endpoint && !embeds
        ? "unsupported_endpoint"
        : !(embeds ? this.embedModels : this.models).has(msg.model)
          ? "model_not_loaded"
          : this.jobs.size >= (this.opts.maxJobs ?? 8)
            ? "busy"
            : undefined;
    if (reason) {
      this.send({ type: "reject", job_id: msg.job_id, reason }, ws);
      this.stats.rejected++;
      return this.status(`job ${short(msg.job_id)} ${msg.model} rejected: ${reason}`);
    }
    const job: Job = {
      id: msg.job_id,
      model: msg.model,
      ws,
      abort: new AbortController(),
      started: Date.now(),
    };
    this.jobs.set(job.id, job);
    this.send({ type: "accept", job_id: job.id }, ws);
    try {
      const usage = embeds ? await this.serveEmbeddings(job) : await this.serve(job);
      this.stats.jobs++;
      this.stats.tokens += usage.completion_tokens;
      this.stats.promptTokens += usage.prompt_tokens;
      const ms = Date.now() - job.started;
      const rate = ms > 0 ? Math.round((usage.completion_tokens * 1000) / ms) : 0;
      if (job.stopped) this.stats.cancelled++;
      this.status(
        `job ${short(job.id)} ${job.model} ${usage.completion_tokens} tokens in ${ms} ms ` +
          `(${rate} tok/s, prompt ${usage.prompt_tokens})${job.stopped ? ` stopped: ${job.stopped}` : ""}`,
      );
    } catch (err) {
      if (job.stopped) {
        // stopped before the stream began (e.g. cancelled during the body pull)
        this.stats.jobs++;
        this.stats.cancelled++;
        this.send(this.done(job), ws);
        this.status(`job ${short(job.id)} ${job.model} 0 tokens stopped: ${job.stopped}`);
        return;
      }
      const message = (err as Error).message ?? String(err);
      this.stats.failed++;
      this.send({ type: "proxy_done", job_id: job.id, error: message.slice(0, 500) }, ws);
      this.status(`job ${short(job.id)} ${job.model} failed: ${message}`);
    } finally {
      this.jobs.delete(job.id);
    }
  }

  /**
   * An embedding job: pulls the OpenAI embeddings body, embeds with the backend and relays the
   * `/v1/embeddings` JSON answer as text in proxy_chunk frames, then proxy_done.
   */
  private async serveEmbeddings(job: Job): Promise<Usage> {
    const pulled = await this.pullBody(job);
    const { frames, usage } = await embeddingAnswer(this.opts.backend, job.model, pulled, job.abort.signal);
    if (job.stopped) throw new Error(job.stopped);
    for (const data of frames) this.send({ type: "proxy_chunk", job_id: job.id, data }, job.ws);
    this.send({ type: "proxy_done", job_id: job.id }, job.ws);
    return usage;
  }

  private async pullBody(job: Job): Promise<unknown> {
    const res = await fetch(
      `${this.opts.gateway}/v1/gateway/jobs/${encodeURIComponent(job.id)}/proxy/request`,
      {
        headers: { authorization: `Bearer ${this.opts.apiKey}` },
        signal: AbortSignal.any([job.abort.signal, AbortSignal.timeout(this.timeoutMs)]),
      },
    );
    if (!res.ok) throw new Error(`body pull failed (HTTP ${res.status}): ${await errorText(res)}`);
    return res.json().catch(() => undefined);
  }

  /** Pulls the job's body, runs it and relays the stream; returns the usage served. */
  private async serve(job: Job): Promise<Usage> {
    const parsed = JobBody.safeParse(await this.pullBody(job));
    if (!parsed.success) throw new Error(`unusable job body: ${parsed.error.issues[0]?.message}`);
    const body = parsed.data;
    const cap = this.opts.maxTokensCap ?? 32_768;
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
    const stream: AsyncIterable<Chunk> =
      kind === "chat"
        ? this.opts.backend.chat({ ...request, messages: body.messages ?? [] }, job.abort.signal)
        : this.opts.backend.complete({ ...request, prompt: body.prompt ?? "" }, job.abort.signal);

    const frames = new FrameBatcher(
      (data) => this.send({ type: "proxy_chunk", job_id: job.id, data }, job.ws),
      this.opts.relayWindowMs ?? 2,
    );
    try {
      return await this.relayStream(job, kind, stream, maxTokens, frames);
    } finally {
      frames.flush(); // what was generated goes out before any proxy_done the caller sends
    }
  }

  private async relayStream(
    job: Job,
    kind: "chat" | "completions",
    stream: AsyncIterable<Chunk>,
    maxTokens: number,
    frames: FrameBatcher,
  ): Promise<Usage> {
    const relay = (chunk: Chunk) => frames.push(`data: ${JSON.stringify(chunk)}\n\n`);
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
      relay(chunk);
    }
    if (job.stopped) {
      frames.flush();
      this.send(this.done(job), job.ws);
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
    this.send({ type: "proxy_done", job_id: job.id }, job.ws);
    return usage;
  }
}

/**
 * Coalesces SSE text into `proxy_chunk` frames of at most MAX_CHUNK_BYTES: the first text after a
 * quiet spell of `windowMs` is sent at once (a model slower than the window never waits), later text
 * waits for the window to pass, so a fast stream costs one WebSocket frame (one write on each side)
 * per window instead of one per token. Text is never split inside a character or reordered.
 */
export class FrameBatcher {
  private pending = "";
  private pendingBytes = 0;
  private lastSent = -Infinity;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sendFrame: (data: string) => void,
    private readonly windowMs: number,
  ) {}

  push(text: string): void {
    const bytes = Buffer.byteLength(text, "utf8");
    if (this.pendingBytes + bytes > MAX_CHUNK_BYTES) this.flush();
    if (bytes > MAX_CHUNK_BYTES) {
      for (const data of splitUtf8(text)) this.sendFrame(data);
      this.lastSent = performance.now();
      return;
    }
    this.pending += text;
    this.pendingBytes += bytes;
    if (this.timer) return;
    const wait = this.lastSent + this.windowMs - performance.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait);
  }

  /** Sends what is pending now (before proxy_done, or when the job stops). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === "") return;
    const data = this.pending;
    this.pending = "";
    this.pendingBytes = 0;
    this.lastSent = performance.now();
    this.sendFrame(data);
  }
}
