/**
 * A scripted gateway for provider tests: a real HTTP + WebSocket server on 127.0.0.1 speaking the
 * gateway side of shared/protocols/owlrun-node.md byte for byte (signup, register, the node
 * WebSocket with ping / heartbeat_ack / job / job_complete / drain and our `cancel`, the job-body
 * pull). The test decides what to send (jobs, garbage frames) and reads everything the node sent.
 * It can go down and come back on the same port, like a restarting gateway.
 */
import { type AckInfo, DEFAULT_ACK } from "../../gateway/routing/index.js";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";

export type Frame = Record<string, unknown> & { type?: string; job_id?: string };

export interface FakeGatewayOptions {
  /** fixed port (0: any free one) */
  port?: number;
  /** keys the gateway knows from the start; signup adds more */
  keys?: string[];
  signupOpen?: boolean;
  /** send `ping` this often (off by default) */
  pingMs?: number;
  /** answer each heartbeat with a heartbeat_ack (default true) */
  ackHeartbeats?: boolean;
}

/** The heartbeat_ack fields, as Owlrun agents read them (`amount_sats` of withdrawals in msats). */
export type AckFields = AckInfo;

export interface JobResult {
  /** "done" after proxy_done, "rejected" after reject */
  status: "done" | "rejected";
  reason?: string;
  /** the error a proxy_done carried */
  error?: string;
  /** the SSE text reassembled from proxy_chunk frames */
  sse: string;
  /** parsed `data:` events, without [DONE] */
  chunks: Record<string, any>[];
  sawDone: boolean;
  /** content (chat deltas or completion text) joined */
  text: string;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  finishReason?: string;
  /** frames of this job, in order (accept, proxy_chunk…, proxy_done) */
  frames: Frame[];
  /** ms from the job offer to accept/reject */
  answerMs?: number;
}

export interface FakeJob {
  id: string;
  model: string;
  body: Record<string, unknown>;
  frames: Frame[];
  /** resolves when the node accepted or rejected */
  answered: Promise<Frame>;
  /** resolves on proxy_done or reject */
  result: Promise<JobResult>;
  cancel(): void;
}

/** Parses SSE text into its `data:` payloads. */
export function parseSse(sse: string): { chunks: Record<string, any>[]; sawDone: boolean } {
  const chunks: Record<string, any>[] = [];
  let sawDone = false;
  for (const event of sse.split("\n\n")) {
    const data = event
      .split("\n")
      .filter((l) => l.startsWith("data:"))
      .map((l) => l.slice(5).trimStart())
      .join("\n");
    if (!data) continue;
    if (data === "[DONE]") sawDone = true;
    else chunks.push(JSON.parse(data));
  }
  return { chunks, sawDone };
}

interface Conn {
  ws: WebSocket;
  key: string;
  nodeId?: string;
}

export class FakeGateway {
  url = "";
  port = 0;
  readonly keys: Set<string>;
  signupOpen: boolean;
  /** what the next heartbeat_acks carry */
  ack: AckFields = {
    ...DEFAULT_ACK,
    btc_live_usd: 100_000,
    btc_daily_avg: 100_000,
    btc_price_status: "live",
    karma_tier: "new",
  };
  readonly registrations: { authorization?: string; body: Record<string, any> }[] = [];
  readonly pulls: { jobId: string; authorization?: string; status: number }[] = [];
  readonly signups: string[] = [];
  /** every frame any node sent, parsed */
  readonly received: Frame[] = [];
  /** WebSocket upgrades accepted / refused (unknown key) */
  connections = 0;
  refusedUpgrades = 0;
  private server?: Server;
  private wss = new WebSocketServer({ noServer: true });
  private current?: Conn;
  private readonly jobs = new Map<
    string,
    {
      job: FakeJob;
      key: string;
      offeredAt: number;
      withheld: boolean;
      answerMs?: number;
      done: (r: JobResult) => void;
      answer: (f: Frame) => void;
    }
  >();
  private waiters: (() => void)[] = [];
  private pinger?: NodeJS.Timeout;

  constructor(private readonly opts: FakeGatewayOptions = {}) {
    this.keys = new Set(opts.keys ?? []);
    this.signupOpen = opts.signupOpen ?? true;
  }

  /** Listens (again) on the configured or previous port. */
  async start(): Promise<this> {
    const server = createServer((req, res) => void this.http(req, res));
    server.on("upgrade", (req, socket, head) => this.upgrade(req, socket, head));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port || this.opts.port || 0, "127.0.0.1", () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    if (this.opts.pingMs) this.pinger = setInterval(() => this.send({ type: "ping" }), this.opts.pingMs);
    return this;
  }

  /** Goes down like a crashed gateway: every socket is cut, the port is closed. */
  async stop(): Promise<void> {
    clearInterval(this.pinger);
    for (const c of this.wss.clients) c.terminate();
    this.current = undefined;
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async close(): Promise<void> {
    await this.stop();
    this.wss.close();
  }

  get connected(): boolean {
    return this.current !== undefined && this.current.ws.readyState === 1;
  }

  /** Sends a frame (an object as JSON, a string as is) to the connected node. */
  send(msg: unknown): void {
    const ws = this.current?.ws;
    if (ws?.readyState === 1) ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  drain(): void {
    this.send({ type: "drain" });
  }

  /**
   * Offers a job to the connected node, as the gateway does after it chose this node. A `null` body
   * makes the body pull answer 404, as for a job the gateway already gave to another node.
   */
  /** Offers a job; `extra` adds fields to the `job` message (e.g. our `endpoint` extension). */
  offer(model: string, body: Record<string, unknown> | null, extra: Record<string, unknown> = {}): FakeJob {
    const id = `job-${randomBytes(8).toString("hex")}`;
    let done!: (r: JobResult) => void;
    let answer!: (f: Frame) => void;
    const frames: Frame[] = [];
    const job: FakeJob = {
      id,
      model,
      body: body === null ? {} : { model, ...body },
      frames,
      answered: new Promise((r) => (answer = r)),
      result: new Promise((r) => (done = r)),
      cancel: () => this.send({ type: "cancel", job_id: id }),
    };
    this.jobs.set(id, {
      job,
      key: this.current?.key ?? "",
      offeredAt: Date.now(),
      withheld: body === null,
      done,
      answer,
    });
    this.send({
      type: "job",
      job_id: id,
      model,
      vram_required_mb: 0,
      buyer_region: "",
      free_tier: false,
      ...extra,
    });
    return job;
  }

  /** Resolves with the first frame (already received or coming) that matches. */
  async waitFor(pred: (m: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) {
        throw new Error(
          `no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.received.slice(-20))}`,
        );
      }
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  /** Waits until `cond` holds (polling). */
  async until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async http(req: IncomingMessage, res: import("node:http").ServerResponse): Promise<void> {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const error = (status: number, type: string, message: string) =>
      json(status, { error: { message, type, code: status } });
    const url = new URL(req.url ?? "/", "http://gateway");
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const raw = await new Promise<string>((resolve) => {
      let s = "";
      req.on("data", (d) => (s += d));
      req.on("end", () => resolve(s));
    });
    if (req.method === "POST" && url.pathname === "/v1/gateway/signup") {
      if (!this.signupOpen) return error(403, "signup_closed", "provider signup is closed on this gateway");
      const key = `owlr_prov_${randomBytes(16).toString("hex")}`;
      this.keys.add(key);
      this.signups.push(key);
      return json(201, { api_key: key });
    }
    if (req.method === "POST" && url.pathname === "/v1/gateway/register") {
      if (!bearer || !this.keys.has(bearer))
        return error(401, "invalid_key", "missing or unknown provider key");
      let body: Record<string, any>;
      try {
        body = JSON.parse(raw);
      } catch {
        return error(400, "invalid_request", "malformed JSON body");
      }
      if (typeof body.node_id !== "string" || !Array.isArray(body.models)) {
        return error(400, "invalid_request", "invalid registration: node_id and models are required");
      }
      if (body.api_key !== bearer)
        return error(403, "forbidden", "api_key in the body must equal the bearer key");
      this.registrations.push({ authorization: req.headers.authorization, body });
      return json(201, { status: "registered", node_id: body.node_id });
    }
    const pull = /^\/v1\/gateway\/jobs\/([^/]+)\/proxy\/request$/.exec(url.pathname);
    if (req.method === "GET" && pull) {
      const jobId = decodeURIComponent(pull[1]!);
      const key = bearer ?? url.searchParams.get("api_key") ?? undefined;
      const entry = this.jobs.get(jobId);
      const status =
        !key || !this.keys.has(key) ? 401 : !entry || entry.withheld ? 404 : entry.key !== key ? 403 : 200;
      this.pulls.push({ jobId, authorization: req.headers.authorization, status });
      if (status === 401) return error(401, "invalid_key", "missing or unknown provider key");
      if (status === 404) return error(404, "not_found", "no such job is waiting");
      if (status === 403) return error(403, "forbidden", "this job is not assigned to you");
      return json(200, entry!.job.body);
    }
    return error(404, "not_found", "not found");
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "http://gateway");
    const key = url.searchParams.get("api_key") ?? "";
    if (url.pathname !== "/v1/gateway/ws" || !this.keys.has(key)) {
      this.refusedUpgrades++;
      socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const old = this.current;
      const conn: Conn = { ws, key };
      this.current = conn;
      this.connections++;
      if (old && old.key === key) old.ws.close(1000, "replaced by a newer connection");
      ws.on("message", (raw) => this.onFrame(conn, raw.toString()));
      ws.on("close", () => {
        if (this.current === conn) this.current = undefined;
      });
    });
  }

  private onFrame(conn: Conn, raw: string): void {
    const msg = JSON.parse(raw) as Frame;
    this.received.push(msg);
    for (const w of this.waiters.splice(0)) w();
    if (msg.type === "heartbeat" && this.opts.ackHeartbeats !== false) {
      conn.ws.send(JSON.stringify({ type: "heartbeat_ack", ...this.ack }));
    }
    const entry = typeof msg.job_id === "string" ? this.jobs.get(msg.job_id) : undefined;
    if (!entry) return;
    entry.job.frames.push(msg);
    if (msg.type === "accept" || msg.type === "reject") {
      entry.answerMs ??= Date.now() - entry.offeredAt;
      entry.answer(msg);
    }
    if (msg.type === "reject" || msg.type === "proxy_done") {
      const sse = entry.job.frames
        .filter((f) => f.type === "proxy_chunk")
        .map((f) => String(f.data))
        .join("");
      const { chunks, sawDone } = parseSse(sse);
      const text = chunks
        .flatMap((c) => (c.choices ?? []).map((x: any) => x.delta?.content ?? x.text ?? ""))
        .join("");
      const usage = chunks.find((c) => c.usage)?.usage;
      const finishReason = chunks
        .flatMap((c) => c.choices ?? [])
        .find((x: any) => x.finish_reason)?.finish_reason;
      entry.done({
        status: msg.type === "reject" ? "rejected" : "done",
        ...(msg.type === "reject" ? { reason: String(msg.reason) } : {}),
        ...(typeof msg.error === "string" ? { error: msg.error } : {}),
        sse,
        chunks,
        sawDone,
        text,
        usage,
        finishReason,
        frames: entry.job.frames,
        answerMs: entry.answerMs,
      });
      if (msg.type === "proxy_done" && !msg.error) {
        conn.ws.send(
          JSON.stringify({
            type: "job_complete",
            job_id: msg.job_id,
            tokens: usage?.completion_tokens ?? 0,
            earned_usd: 0.0001,
          }),
        );
      }
    }
  }
}

export async function startFakeGateway(opts: FakeGatewayOptions = {}): Promise<FakeGateway> {
  return new FakeGateway(opts).start();
}
