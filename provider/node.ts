/**
 * An Owlrun provider node: dials out to a gateway (no open port needed), registers its models over
 * HTTP, holds the WebSocket, and serves jobs from its backend by relaying OpenAI SSE text in
 * `proxy_chunk` frames. Speaks shared/protocols/owlrun-node.md exactly; `cancel` is our additive
 * extension, and unknown message types and fields are ignored.
 */
import { WebSocket } from "ws";
import { type Logger, timeline } from "../src/shared/index.js";
import type { Backend } from "./backends/types.js";
import { CANCELLED, type Job, type JobContext, runJob, stopJob } from "./job.js";
import {
  type HeartbeatAck,
  EMBEDDINGS_ENDPOINT,
  type JobMessage,
  type NodeMessage,
  parseGatewayFrame,
  type RegisterBody,
} from "./protocol.js";
import { backoffDelay, postRegistration, RegistrationError } from "./registration.js";
import { applyHeartbeatAck, emptyStats, type NodeStats } from "./stats.js";

export { backoffDelay } from "./registration.js";
export type { LastPayout, NodeStats } from "./stats.js";

/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_MS = 10_000;

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
   * a fast stream sends at most one frame per window (default 8 ms: a model slower than 125 tokens/s
   * never waits, and the first token never does; 0 sends every chunk on its own). 8 ms instead of 2
   * cut the gateway's CPU per token ~20 % on the fast test model (docs/performance.md).
   */
  relayWindowMs?: number;
  /** register and body-pull timeout; default 10 s */
  requestTimeoutMs?: number;
  /** one line per job (default: the logger at info) */
  onStatus?: (line: string) => void;
  log: Logger;
}

const short = (id: string) => id.slice(0, 8);

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
  readonly stats: NodeStats = emptyStats();
  private readonly jobContext: JobContext;

  constructor(private readonly opts: NodeOptions) {
    this.jobContext = {
      gateway: opts.gateway,
      apiKey: opts.apiKey,
      backend: opts.backend,
      timeoutMs: opts.requestTimeoutMs ?? 10_000,
      maxTokensCap: opts.maxTokensCap ?? 32_768,
      relayWindowMs: opts.relayWindowMs ?? 8,
      send: (msg, ws) => this.send(msg, ws),
    };
  }

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
    for (const job of this.jobs.values()) stopJob(job, "node shutting down");
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
      inline_job_body: true,
      ollama_url: this.opts.ollamaUrl ?? "",
      region: this.opts.region ?? "",
      ...(this.opts.lightningAddress ? { lightning_address: this.opts.lightningAddress } : {}),
      ...(this.opts.freeTierPct ? { free_tier_pct: this.opts.freeTierPct } : {}),
      version: this.opts.version,
    };
    await postRegistration(this.opts.gateway, this.opts.apiKey, body, this.timeoutMs);
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
      for (const job of this.jobs.values()) if (job.ws === ws) stopJob(job, "gateway connection lost");
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
        if (job) stopJob(job, CANCELLED);
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
    applyHeartbeatAck(this.stats, msg, this.seenBroadcasts, this.opts.log);
  }

  private status(line: string): void {
    if (this.opts.onStatus) this.opts.onStatus(line);
    else this.opts.log.info(line);
  }

  private async onJob(msg: JobMessage): Promise<void> {
    timeline?.("p.offer");
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
      ...(msg.body !== undefined ? { body: msg.body } : {}),
    };
    this.jobs.set(job.id, job);
    this.send({ type: "accept", job_id: job.id }, ws);
    try {
      await runJob(this.jobContext, job, embeds, this.stats, (line) => this.status(line));
    } finally {
      this.jobs.delete(job.id);
    }
  }
}
