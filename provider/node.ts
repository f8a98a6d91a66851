/**
 * An Owlrun provider node: dials out to a gateway (no open port needed), registers its models,
 * holds the WebSocket, and serves jobs from its backend by streaming OpenAI SSE text in
 * `proxy_chunk` frames. Speaks protocols/owlrun-node.md exactly; `cancel` is our additive extension.
 */
import { randomUUID } from "node:crypto";
import { WebSocket } from "ws";
import * as z from "zod";
import type { Logger } from "../src/shared/index.js";
import type { Backend } from "./backends/types.js";

const MAX_FRAME_TEXT = 4 * 1024;
export const DEFAULT_MAX_TOKENS = 1024;

const GatewayMessage = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("ping") }),
  z.looseObject({ type: z.literal("drain") }),
  z.looseObject({ type: z.literal("cancel"), job_id: z.string().max(128) }),
  z.looseObject({ type: z.literal("job"), job_id: z.string().min(1).max(128), model: z.string().max(200) }),
  z.looseObject({
    type: z.literal("heartbeat_ack"),
    earned_today_sats: z.number().optional(),
    earned_total_sats: z.number().optional(),
    balance_sats: z.number().optional(),
    withdraw_history: z
      .array(z.looseObject({ amount_sats: z.number().optional(), timestamp: z.unknown().optional() }))
      .optional(),
  }),
  z.looseObject({ type: z.literal("job_complete") }),
]);
const KNOWN = new Set(["ping", "drain", "cancel", "job", "heartbeat_ack", "job_complete"]);

export interface NodeOptions {
  gateway: string;
  apiKey: string;
  nodeId: string;
  backend: Backend;
  lightningAddress?: string;
  heartbeatMs?: number;
  /** backoff bounds, ms */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  version: string;
  log: Logger;
}

export interface NodeStats {
  jobs: number;
  tokens: number;
  rejected: number;
  earnedTodaySats: number;
  earnedTotalSats: number;
  balanceSats: number;
  lastPayout?: { amount_sats?: number; timestamp?: unknown };
}

export class ProviderNode {
  private ws?: WebSocket;
  private closed = false;
  private draining = false;
  private attempt = 0;
  private heartbeat?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private readonly jobs = new Map<string, AbortController>();
  readonly stats: NodeStats = {
    jobs: 0,
    tokens: 0,
    rejected: 0,
    earnedTodaySats: 0,
    earnedTotalSats: 0,
    balanceSats: 0,
  };
  private firstConnect?: { resolve: () => void; reject: (e: Error) => void };

  constructor(private readonly opts: NodeOptions) {}

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Registers and connects; resolves once connected the first time (rejects on a hard refusal). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      void this.connect();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    for (const c of this.jobs.values()) c.abort();
    this.ws?.close();
  }

  private async register(): Promise<void> {
    const models = await this.opts.backend.models();
    const res = await fetch(`${this.opts.gateway}/v1/gateway/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.opts.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        node_id: this.opts.nodeId,
        api_key: this.opts.apiKey,
        gpu: "cpu",
        gpu_vendor: "none",
        vram_total_mb: 0,
        vram_free_mb: 0,
        vram_exact: false,
        models,
        ollama_url: "",
        region: "",
        ...(this.opts.lightningAddress ? { lightning_address: this.opts.lightningAddress } : {}),
        version: this.opts.version,
      }),
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status === 401 || res.status === 403 || res.status === 400) {
      throw Object.assign(
        new Error(`the gateway refused registration (HTTP ${res.status}): ${await res.text()}`),
        { fatal: true },
      );
    }
    if (res.status !== 201 && res.status !== 200) throw new Error(`registration failed: HTTP ${res.status}`);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    try {
      await this.register();
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal && this.firstConnect) {
        this.firstConnect.reject(err as Error);
        this.firstConnect = undefined;
        this.closed = true;
        return;
      }
      this.opts.log.warn("gateway unreachable; retrying", { err: String((err as Error).message ?? err) });
      return this.scheduleReconnect();
    }
    const url = `${this.opts.gateway.replace(/^http/, "ws")}/v1/gateway/ws?api_key=${encodeURIComponent(this.opts.apiKey)}`;
    const ws = new WebSocket(url, { maxPayload: 1024 * 1024 });
    this.ws = ws;
    ws.on("open", () => {
      this.attempt = 0;
      this.opts.log.info("connected to gateway", { gateway: this.opts.gateway, node: this.opts.nodeId });
      this.sendHeartbeat();
      clearInterval(this.heartbeat);
      this.heartbeat = setInterval(() => this.sendHeartbeat(), this.opts.heartbeatMs ?? 30_000);
      this.heartbeat.unref();
      this.firstConnect?.resolve();
      this.firstConnect = undefined;
    });
    ws.on("message", (raw) => this.onMessage(raw.toString()));
    ws.on("error", () => undefined);
    ws.on("close", () => {
      clearInterval(this.heartbeat);
      for (const c of this.jobs.values()) c.abort();
      if (!this.closed) {
        this.opts.log.warn("gateway connection lost; reconnecting");
        this.scheduleReconnect();
      }
    });
  }

  /** Exponential backoff 1 s → 30 s with jitter; re-registers before reconnecting. */
  private scheduleReconnect(): void {
    if (this.closed) return;
    const min = this.opts.minBackoffMs ?? 1000;
    const max = this.opts.maxBackoffMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** this.attempt++);
    const jittered = delay / 2 + Math.random() * (delay / 2);
    this.reconnectTimer = setTimeout(() => void this.connect(), jittered);
    this.reconnectTimer.unref();
  }

  private send(msg: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private sendHeartbeat(): void {
    this.send({
      type: "heartbeat",
      gpu_util_pct: 0,
      vram_free_mb: 0,
      temp_c: 0,
      power_w: 0,
      queue_depth: this.jobs.size,
      earning_state: this.jobs.size > 0 ? "earning" : "idle",
    });
  }

  private onMessage(raw: string): void {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      this.opts.log.warn("dropped a frame that is not JSON");
      return;
    }
    const type = (json as { type?: unknown })?.type;
    if (typeof type !== "string" || !KNOWN.has(type)) return; // forward compatible
    const parsed = GatewayMessage.safeParse(json);
    if (!parsed.success) {
      this.opts.log.warn("dropped a malformed message", { type });
      return;
    }
    const msg = parsed.data;
    if (msg.type === "ping") this.send({ type: "pong" });
    else if (msg.type === "drain") {
      this.draining = true;
      this.opts.log.info("gateway asked to drain: taking no new jobs");
    } else if (msg.type === "cancel") this.jobs.get(msg.job_id)?.abort();
    else if (msg.type === "heartbeat_ack") {
      this.stats.earnedTodaySats = msg.earned_today_sats ?? this.stats.earnedTodaySats;
      this.stats.earnedTotalSats = msg.earned_total_sats ?? this.stats.earnedTotalSats;
      this.stats.balanceSats = msg.balance_sats ?? this.stats.balanceSats;
      const last = msg.withdraw_history?.at(-1);
      if (last) this.stats.lastPayout = last;
    } else if (msg.type === "job") void this.onJob(msg.job_id, msg.model);
  }

  private async onJob(jobId: string, model: string): Promise<void> {
    if (this.draining) {
      this.stats.rejected++;
      return this.send({ type: "reject", job_id: jobId, reason: "draining" });
    }
    if (!(await this.opts.backend.models()).includes(model)) {
      this.stats.rejected++;
      return this.send({ type: "reject", job_id: jobId, reason: "model_not_loaded" });
    }
    this.send({ type: "accept", job_id: jobId });
    const abort = new AbortController();
    this.jobs.set(jobId, abort);
    const started = Date.now();
    let completion = 0;
    try {
      const res = await fetch(
        `${this.opts.gateway}/v1/gateway/jobs/${encodeURIComponent(jobId)}/proxy/request`,
        {
          headers: { authorization: `Bearer ${this.opts.apiKey}` },
          signal: AbortSignal.timeout(10_000),
        },
      );
      if (!res.ok) throw new Error(`body pull failed: HTTP ${res.status}`);
      const body = (await res.json()) as Record<string, unknown>;
      const kind = Array.isArray(body.messages) ? "chat" : "completions";
      const requested = Number(body.max_tokens ?? body.max_completion_tokens ?? DEFAULT_MAX_TOKENS);
      const maxTokens =
        Number.isSafeInteger(requested) && requested > 0 ? Math.min(requested, 32_768) : DEFAULT_MAX_TOKENS;
      const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID()}`;
      const created = Math.floor(Date.now() / 1000);
      const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
      const chunk = (choice: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object, created, model, choices: [{ index: 0, ...choice }], ...extra })}\n\n`;
      let pending =
        kind === "chat" ? chunk({ delta: { role: "assistant", content: "" }, finish_reason: null }) : "";
      const flush = () => {
        while (pending.length > 0) {
          this.send({ type: "proxy_chunk", job_id: jobId, data: pending.slice(0, MAX_FRAME_TEXT) });
          pending = pending.slice(MAX_FRAME_TEXT);
        }
      };
      for await (const ev of this.opts.backend.generate({ kind, body, maxTokens, signal: abort.signal })) {
        if (ev.type === "text") {
          pending +=
            kind === "chat"
              ? chunk({ delta: { content: ev.text }, finish_reason: null })
              : chunk({ text: ev.text, finish_reason: null });
          flush();
        } else {
          completion = ev.completionTokens;
          const finish = ev.finishReason === "cancelled" ? "stop" : ev.finishReason;
          pending +=
            kind === "chat"
              ? chunk({ delta: {}, finish_reason: finish })
              : chunk({ text: "", finish_reason: finish });
          pending += `data: ${JSON.stringify({
            id,
            object,
            created,
            model,
            choices: [],
            usage: {
              prompt_tokens: ev.promptTokens,
              completion_tokens: ev.completionTokens,
              total_tokens: ev.promptTokens + ev.completionTokens,
            },
          })}\n\ndata: [DONE]\n\n`;
          flush();
        }
      }
      this.send({ type: "proxy_done", job_id: jobId });
      this.stats.jobs++;
      this.stats.tokens += completion;
      this.opts.log.info(
        `job ${jobId.slice(0, 8)} ${model} ${completion} tokens in ${Date.now() - started} ms${abort.signal.aborted ? " (cancelled)" : ""}`,
      );
    } catch (err) {
      this.opts.log.warn(`job ${jobId.slice(0, 8)} failed`, { err: String((err as Error).message ?? err) });
      this.send({
        type: "proxy_done",
        job_id: jobId,
        error: String((err as Error).message ?? err).slice(0, 500),
      });
    } finally {
      this.jobs.delete(jobId);
    }
  }
}
