/**
 * A scripted provider that speaks the Owlrun node protocol byte for byte as documented
 * (shared/protocols/owlrun-node.md), the way the real Go agent does: signup and register over HTTP,
 * the WebSocket at /v1/gateway/ws?api_key=…, heartbeats, pong, accept/reject, pulling the job body
 * with its Bearer key, Ollama's OpenAI-compatible SSE text relayed in `proxy_chunk` frames cut at
 * arbitrary places, then `proxy_done`. Tests script how it behaves per job (reject, stay silent, die,
 * inflate usage, ignore `cancel`, …) and read back what it saw.
 */
import { WebSocket } from "ws";

export interface JobOffer {
  job_id: string;
  model: string;
  vram_required_mb: number;
  buyer_region: string;
  free_tier: boolean;
}

export interface JobScript {
  /** serve (default), reject, ignore the offer, or accept and then drop the connection */
  action?: "serve" | "reject" | "ignore" | "die-after-accept";
  rejectReason?: string;
  /** content deltas, one per SSE event (Ollama streams one token per event) */
  words?: string[];
  /** pause before each content delta */
  delayMs?: number;
  /** pause after the body pull, before the first delta (a model loading) */
  firstDelayMs?: number;
  /** cut the SSE text into proxy_chunk frames of this many characters (default 23: lines split) */
  frameChars?: number;
  /** usage to report (default: the true counts); null = no usage chunk */
  usage?: ((words: number) => { prompt_tokens: number; completion_tokens: number }) | null;
  /** drop the connection (as if killed) after this many deltas */
  dieAfterWords?: number;
  /** send a non-JSON `data:` line after this many deltas */
  garbageAfterWords?: number;
  /** embeddings jobs: the raw answer text to relay instead of the computed one (rogue nodes) */
  embedAnswer?: (body: Record<string, unknown>) => string;
  /** embeddings jobs: prompt_tokens to report (default: the true count, one per character) */
  embedPromptTokens?: number;
  /** stop streaming when the gateway sends `cancel` (default true; old agents ignore it) */
  obeyCancel?: boolean;
  /** end without proxy_done (a stalled stream) */
  stallAfterWords?: number;
  /** tool calls to make after the words (finish_reason "tool_calls") */
  toolCalls?: { id?: string; name: string; arguments: string }[];
  /**
   * stream each call's arguments in fragments of this many characters, OpenAI style (first delta
   * carries id and name); default: each call whole in one delta, as Ollama sends them
   */
  toolFragmentChars?: number;
}

/**
 * What an honest tokenizer would report for the tool calls: about a token per 3 bytes of name and
 * arguments plus the template's call markers (Qwen: `<tool_call>`, the JSON frame, `</tool_call>`).
 */
export function honestToolTokens(calls: { name: string; arguments: string }[]): number {
  return calls.reduce((n, c) => n + Math.ceil((c.name.length + c.arguments.length) / 3) + 10, 0);
}

export interface AgentScript {
  models: string[];
  lightningAddress?: string;
  /** `free_tier_pct` at registration (default 0: paid jobs only) */
  freeTierPct?: number;
  /**
   * models it embeds with, announced as `embedding_models` (our extension): only then does the
   * gateway send it embedding jobs (`job.endpoint: "/v1/embeddings"`)
   */
  embeddingModels?: string[];
  /** registers `inline_job_body` (our extension): offers then carry the body, and it is not pulled */
  inlineJobBody?: boolean;
  // Shorthands for `job` (the first suites use them).
  /** words streamed as content deltas */
  reply?: string[];
  /** reject every job with this reason */
  rejectWith?: string;
  /** never answer job offers */
  silent?: boolean;
  /** drop the connection after this many content deltas (0: after accepting and pulling) */
  dieAfterChunks?: number;
  /** completion_tokens to report instead of the true count */
  reportCompletionTokens?: number;
  /** ms before each delta */
  chunkDelayMs?: number;
  /** heartbeat period; 0 = never (default 30 s, as Owlrun) */
  heartbeatMs?: number;
  /** answer `ping` with `pong` (default true) */
  answerPings?: boolean;
  /** what to do with each job offer */
  job?: JobScript | ((offer: JobOffer) => JobScript);
}

/** @deprecated name kept for the first suites: use AgentScript */
export type AgentOptions = AgentScript;
export type Agent = OwlrunAgent;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function signup(gateway: string): Promise<string> {
  const res = await fetch(`${gateway}/v1/gateway/signup`, { method: "POST" });
  if (res.status !== 201) throw new Error(`signup: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { api_key: string }).api_key;
}

/** The registration body the Owlrun agent sends (all fields, snake_case). */
export function registrationBody(
  apiKey: string,
  nodeId: string,
  models: string[],
  lightningAddress?: string,
  freeTierPct = 0,
) {
  return {
    node_id: nodeId,
    api_key: apiKey,
    gpu: "NVIDIA GeForce RTX 4090",
    gpu_vendor: "nvidia",
    vram_total_mb: 24564,
    vram_free_mb: 20000,
    vram_exact: true,
    models,
    ollama_url: "http://127.0.0.1:11434",
    region: "eu-west",
    wallet: "",
    referral_code: "",
    lightning_address: lightningAddress ?? "",
    redeem_threshold_sats: 0,
    free_tier_pct: freeTierPct,
    version: "owlrun-scripted/1.0.0",
  };
}

export async function register(
  gateway: string,
  apiKey: string,
  nodeId: string,
  models: string[],
  lightningAddress?: string,
  freeTierPct = 0,
): Promise<Response> {
  return fetch(`${gateway}/v1/gateway/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify(registrationBody(apiKey, nodeId, models, lightningAddress, freeTierPct)),
  });
}

export class OwlrunAgent {
  /** every job offer, in order */
  readonly offers: JobOffer[] = [];
  /** ids of the jobs offered */
  readonly offered: string[] = [];
  /** ids of the jobs the gateway cancelled */
  readonly cancelled: string[] = [];
  readonly acks: Record<string, unknown>[] = [];
  readonly completes: Record<string, unknown>[] = [];
  /** every message the gateway sent, in order */
  readonly received: Record<string, unknown>[] = [];
  /** bodies pulled, in order */
  readonly bodies: Record<string, unknown>[] = [];
  pings = 0;
  drained = false;
  closeCode?: number;
  closeReason?: string;
  private ws?: WebSocket;
  private heartbeat?: NodeJS.Timeout;

  constructor(
    readonly gateway: string,
    readonly apiKey: string,
    readonly nodeId: string,
    readonly script: AgentScript,
  ) {}

  connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Opens the WebSocket (after registering); rejects with the HTTP status when refused. */
  async connect(): Promise<void> {
    const ws = new WebSocket(
      `${this.gateway.replace(/^http/, "ws")}/v1/gateway/ws?api_key=${encodeURIComponent(this.apiKey)}`,
    );
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`ws: HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
    this.closeCode = undefined;
    ws.on("close", (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      if (this.ws === ws) clearInterval(this.heartbeat);
    });
    ws.on("error", () => undefined);
    ws.on("message", (raw) => this.onMessage(ws, raw.toString()));
    this.sendHeartbeat();
    const every = this.script.heartbeatMs ?? 30_000;
    if (every > 0) {
      this.heartbeat = setInterval(() => this.sendHeartbeat(), every);
      this.heartbeat.unref();
    }
  }

  /** Sends a message object as a JSON text frame. */
  sendJson(msg: Record<string, unknown>): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** Sends a raw frame as is (rogue behaviour). */
  send(data: string | Buffer): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  sendHeartbeat(): void {
    this.sendJson({
      type: "heartbeat",
      gpu_util_pct: 12.5,
      vram_free_mb: 20000,
      temp_c: 54,
      power_w: 180,
      queue_depth: 0,
      earning_state: "idle",
    });
  }

  /** Pulls a job body the way Owlrun does (Bearer key); returns the status and body. */
  async pull(jobId: string, apiKey = this.apiKey): Promise<{ status: number; body: unknown }> {
    const res = await fetch(`${this.gateway}/v1/gateway/jobs/${encodeURIComponent(jobId)}/proxy/request`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  }

  /** Drops the connection without a close frame, like a killed process. */
  kill(): void {
    clearInterval(this.heartbeat);
    this.ws?.terminate();
  }

  close(): Promise<void> {
    clearInterval(this.heartbeat);
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once("close", () => resolve());
      ws.close();
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 500).unref();
    });
  }

  /** Waits until `pred` holds (polling), or fails after `ms`. */
  async waitFor(pred: () => boolean, ms = 3_000, what = "condition"): Promise<void> {
    const until = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`${this.nodeId}: timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  private onMessage(ws: WebSocket, text: string): void {
    const msg = JSON.parse(text) as Record<string, unknown> & { type: string };
    this.received.push(msg);
    switch (msg.type) {
      case "ping":
        this.pings++;
        if (this.script.answerPings !== false) this.sendJson({ type: "pong" });
        return;
      case "heartbeat_ack":
        this.acks.push(msg);
        return;
      case "cancel":
        this.cancelled.push(String(msg.job_id));
        return;
      case "job_complete":
        this.completes.push(msg);
        return;
      case "drain":
        this.drained = true;
        return;
      case "job":
        void this.onJob(ws, msg as unknown as JobOffer);
        return;
    }
  }

  private async onJob(ws: WebSocket, offer: JobOffer): Promise<void> {
    this.offers.push(offer);
    this.offered.push(offer.job_id);
    const script = this.jobScript(offer);
    const action = script.action ?? "serve";
    if (action === "ignore") return;
    const embeds = (offer as { endpoint?: string }).endpoint === "/v1/embeddings";
    const serves = embeds ? (this.script.embeddingModels ?? []) : this.script.models;
    if (action === "reject" || !serves.includes(offer.model)) {
      this.sendJson({
        type: "reject",
        job_id: offer.job_id,
        reason: script.rejectReason ?? "model_not_loaded",
      });
      return;
    }
    this.sendJson({ type: "accept", job_id: offer.job_id });
    if (action === "die-after-accept") return this.kill();
    const inline = (offer as { body?: Record<string, unknown> }).body;
    const pulled = inline ? { status: 200, body: inline } : await this.pull(offer.job_id);
    if (pulled.status !== 200) return; // the job went elsewhere
    const body = pulled.body as Record<string, unknown>;
    this.bodies.push(body);
    if ((offer as { endpoint?: string }).endpoint === "/v1/embeddings")
      return this.embed(ws, offer, body, script);
    if (script.firstDelayMs) await sleep(script.firstDelayMs);

    const id = `chatcmpl-${offer.job_id.slice(0, 8)}`;
    const created = Math.floor(Date.now() / 1000);
    const frameChars = script.frameChars ?? 23;
    const live = () => ws.readyState === WebSocket.OPEN && this.ws === ws;
    const cancelled = () => (script.obeyCancel ?? true) && this.cancelled.includes(offer.job_id);
    const emit = (sse: string) => {
      for (let i = 0; i < sse.length; i += frameChars) {
        if (live())
          ws.send(
            JSON.stringify({ type: "proxy_chunk", job_id: offer.job_id, data: sse.slice(i, i + frameChars) }),
          );
      }
    };
    const event = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: offer.model, system_fingerprint: "fp_ollama", choices, ...extra })}\n\n`;

    const words = script.words ?? ["Hello", " from", " a", " scripted", " node", "."];
    let sent = 0;
    for (const w of words) {
      if (script.dieAfterWords !== undefined && sent >= script.dieAfterWords) return this.kill();
      if (script.garbageAfterWords !== undefined && sent >= script.garbageAfterWords) {
        emit("data: {this is not json\n\n");
        break;
      }
      if (script.stallAfterWords !== undefined && sent >= script.stallAfterWords) return;
      if (script.delayMs) await sleep(script.delayMs);
      if (!live() || cancelled()) return;
      emit(event([{ index: 0, delta: { role: "assistant", content: w }, finish_reason: null }]));
      sent++;
    }
    if (!live() || cancelled()) return;
    const calls = script.toolCalls ?? [];
    calls.forEach((call, index) => {
      const id = call.id ?? `call_${index}`;
      const step = script.toolFragmentChars;
      if (!step) {
        const whole = {
          index,
          id,
          type: "function",
          function: { name: call.name, arguments: call.arguments },
        };
        emit(
          event([
            { index: 0, delta: { role: "assistant", content: "", tool_calls: [whole] }, finish_reason: null },
          ]),
        );
        return;
      }
      const open = { index, id, type: "function", function: { name: call.name, arguments: "" } };
      emit(
        event([
          { index: 0, delta: { role: "assistant", content: null, tool_calls: [open] }, finish_reason: null },
        ]),
      );
      for (let i = 0; i < call.arguments.length; i += step) {
        const piece = { index, function: { arguments: call.arguments.slice(i, i + step) } };
        emit(event([{ index: 0, delta: { tool_calls: [piece] }, finish_reason: null }]));
      }
    });
    const finish = calls.length > 0 ? "tool_calls" : "stop";
    let tail = event([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: finish }]);
    const messages = JSON.stringify(body.messages ?? "");
    const usage =
      script.usage === undefined
        ? () => ({
            prompt_tokens: Math.ceil(messages.length / 4),
            completion_tokens: sent + honestToolTokens(calls),
          })
        : script.usage;
    if (usage) {
      const u = usage(sent);
      tail += event([], { usage: { ...u, total_tokens: u.prompt_tokens + u.completion_tokens } });
    }
    tail += "data: [DONE]\n\n";
    emit(tail);
    if (live()) ws.send(JSON.stringify({ type: "proxy_done", job_id: offer.job_id }));
  }

  /**
   * An embeddings job, as a node relays Ollama's `/v1/embeddings` answer: the JSON body as text in
   * proxy_chunk frames, then proxy_done. Vectors are a function of the text (tests can check them).
   */
  private embed(ws: WebSocket, offer: JobOffer, body: Record<string, unknown>, script: JobScript): void {
    const inputs = typeof body.input === "string" ? [body.input] : (body.input as string[]);
    const answer =
      script.embedAnswer?.(body) ??
      JSON.stringify({
        object: "list",
        data: inputs.map((text, index) => ({ object: "embedding", index, embedding: embeddingOf(text) })),
        model: offer.model,
        usage: {
          prompt_tokens: script.embedPromptTokens ?? inputs.join("").length,
          total_tokens: script.embedPromptTokens ?? inputs.join("").length,
        },
      });
    const frameChars = script.frameChars ?? 23;
    for (let i = 0; i < answer.length; i += frameChars) {
      if (ws.readyState === WebSocket.OPEN)
        ws.send(
          JSON.stringify({
            type: "proxy_chunk",
            job_id: offer.job_id,
            data: answer.slice(i, i + frameChars),
          }),
        );
    }
    if (ws.readyState === WebSocket.OPEN)
      ws.send(JSON.stringify({ type: "proxy_done", job_id: offer.job_id }));
  }

  /** The per-job script: `job` (object or function), else the shorthands. */
  private jobScript(offer: JobOffer): JobScript {
    const s = this.script;
    const base: JobScript = {
      ...(s.reply ? { words: s.reply } : {}),
      ...(s.rejectWith ? { action: "reject", rejectReason: s.rejectWith } : {}),
      ...(s.silent ? { action: "ignore" } : {}),
      ...(s.dieAfterChunks !== undefined ? { dieAfterWords: s.dieAfterChunks } : {}),
      ...(s.reportCompletionTokens !== undefined
        ? { usage: () => ({ prompt_tokens: 7, completion_tokens: s.reportCompletionTokens! }) }
        : {}),
      ...(s.chunkDelayMs ? { delayMs: s.chunkDelayMs } : {}),
    };
    const job = typeof s.job === "function" ? s.job(offer) : s.job;
    return { ...base, ...job };
  }
}

/** The scripted node's embedding of a text: 4 numbers derived from its characters. */
export function embeddingOf(text: string): number[] {
  let sum = 0;
  for (const c of text) sum += c.codePointAt(0)!;
  return [text.length / 10, (sum % 97) / 97, -0.5, 0.25];
}

/** Signs up (unless given a key), registers and connects: a node ready for jobs. */
export async function startAgent(
  gateway: string,
  script: AgentScript,
  opts: { apiKey?: string; nodeId?: string } = {},
): Promise<OwlrunAgent> {
  const apiKey = opts.apiKey ?? (await signup(gateway));
  const nodeId = opts.nodeId ?? `node-${Math.random().toString(36).slice(2, 10)}`;
  const res = await fetch(`${gateway}/v1/gateway/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      ...registrationBody(apiKey, nodeId, script.models, script.lightningAddress, script.freeTierPct),
      ...(script.embeddingModels ? { embedding_models: script.embeddingModels } : {}),
      ...(script.inlineJobBody ? { inline_job_body: true } : {}),
    }),
  });
  if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${await res.text()}`);
  const agent = new OwlrunAgent(gateway, apiKey, nodeId, script);
  await agent.connect();
  return agent;
}
