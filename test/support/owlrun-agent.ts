/**
 * A scripted provider that speaks the Owlrun node protocol byte for byte as documented
 * (protocols/owlrun-node.md), the way a real Owlrun agent does: signup/register over HTTP, the
 * WebSocket, accept/reject, pulling the body, OpenAI SSE text in proxy_chunk frames split at odd
 * places, proxy_done, heartbeats. Behaviour is scripted so tests can make it fail on purpose.
 */
import { WebSocket } from "ws";

export interface AgentScript {
  models: string[];
  /** words streamed as content deltas, one per chunk */
  reply?: string[];
  /** reject every job with this reason */
  rejectWith?: string;
  /** never answer job offers */
  silent?: boolean;
  /** close the socket after this many content chunks */
  dieAfterChunks?: number;
  /** completion_tokens to report instead of the true count */
  reportCompletionTokens?: number;
  /** ms between chunks */
  chunkDelayMs?: number;
  lightningAddress?: string;
}

export interface Agent {
  nodeId: string;
  apiKey: string;
  /** job ids this agent was offered */
  offered: string[];
  /** job ids the gateway cancelled */
  cancelled: string[];
  /** bodies pulled */
  bodies: Record<string, unknown>[];
  connected(): boolean;
  send(raw: string): void;
  close(): Promise<void>;
}

export async function signup(gateway: string): Promise<string> {
  const res = await fetch(`${gateway}/v1/gateway/signup`, { method: "POST" });
  if (res.status !== 201) throw new Error(`signup: HTTP ${res.status}`);
  return ((await res.json()) as { api_key: string }).api_key;
}

export async function startAgent(
  gateway: string,
  script: AgentScript,
  opts: { apiKey?: string; nodeId?: string } = {},
): Promise<Agent> {
  const apiKey = opts.apiKey ?? (await signup(gateway));
  const nodeId = opts.nodeId ?? `node-${Math.random().toString(36).slice(2, 10)}`;
  const reg = await fetch(`${gateway}/v1/gateway/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({
      node_id: nodeId,
      api_key: apiKey,
      gpu: "scripted",
      gpu_vendor: "none",
      vram_total_mb: 0,
      vram_free_mb: 0,
      vram_exact: true,
      models: script.models,
      ollama_url: "http://127.0.0.1:11434",
      region: "test",
      ...(script.lightningAddress ? { lightning_address: script.lightningAddress } : {}),
      version: "scripted-0.1",
    }),
  });
  if (reg.status !== 201) throw new Error(`register: HTTP ${reg.status} ${await reg.text()}`);

  const ws = new WebSocket(
    `${gateway.replace(/^http/, "ws")}/v1/gateway/ws?api_key=${encodeURIComponent(apiKey)}`,
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => reject(new Error(`ws: HTTP ${res.statusCode}`)));
  });
  const agent: Agent = {
    nodeId,
    apiKey,
    offered: [],
    cancelled: [],
    bodies: [],
    connected: () => ws.readyState === WebSocket.OPEN,
    send: (raw) => ws.send(raw),
    close: () =>
      new Promise((r) => {
        if (ws.readyState === WebSocket.CLOSED) return r();
        ws.once("close", () => r());
        ws.close();
      }),
  };
  const out = (msg: Record<string, unknown>) =>
    ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));

  const serve = async (jobId: string, model: string) => {
    const res = await fetch(`${gateway}/v1/gateway/jobs/${jobId}/proxy/request`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    const body = (await res.json()) as Record<string, unknown>;
    agent.bodies.push(body);
    const words = script.reply ?? ["Hello", " from", " a", " scripted", " node."];
    const id = `chatcmpl-${jobId.slice(0, 8)}`;
    let sse = `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { role: "assistant" } }] })}\n\n`;
    const flush = () => {
      // Split at an odd place to prove the gateway reassembles SSE lines across frames.
      const cut = Math.max(1, Math.floor(sse.length / 3));
      out({ type: "proxy_chunk", job_id: jobId, data: sse.slice(0, cut) });
      out({ type: "proxy_chunk", job_id: jobId, data: sse.slice(cut) });
      sse = "";
    };
    let sent = 0;
    for (const w of words) {
      if (agent.cancelled.includes(jobId)) return;
      if (script.dieAfterChunks !== undefined && sent >= script.dieAfterChunks) {
        flush();
        ws.terminate();
        return;
      }
      sse += `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [{ index: 0, delta: { content: w } }] })}\n\n`;
      sent++;
      flush();
      if (script.chunkDelayMs) await new Promise((r) => setTimeout(r, script.chunkDelayMs));
    }
    const completion = script.reportCompletionTokens ?? sent;
    sse += `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] })}\n\n`;
    sse += `data: ${JSON.stringify({ id, object: "chat.completion.chunk", model, choices: [], usage: { prompt_tokens: 7, completion_tokens: completion, total_tokens: 7 + completion } })}\n\n`;
    sse += "data: [DONE]\n\n";
    flush();
    out({ type: "proxy_done", job_id: jobId });
  };

  ws.on("message", (raw) => {
    const msg = JSON.parse(raw.toString()) as { type: string; job_id?: string; model?: string };
    if (msg.type === "ping") return out({ type: "pong" });
    if (msg.type === "cancel" && msg.job_id) return void agent.cancelled.push(msg.job_id);
    if (msg.type !== "job" || !msg.job_id) return;
    agent.offered.push(msg.job_id);
    if (script.silent) return;
    if (script.rejectWith || !script.models.includes(msg.model ?? "")) {
      return out({ type: "reject", job_id: msg.job_id, reason: script.rejectWith ?? "model_not_loaded" });
    }
    out({ type: "accept", job_id: msg.job_id });
    void serve(msg.job_id, msg.model!);
  });
  out({
    type: "heartbeat",
    gpu_util_pct: 0,
    vram_free_mb: 0,
    temp_c: 40,
    power_w: 10,
    queue_depth: 0,
    earning_state: "idle",
  });
  return agent;
}
