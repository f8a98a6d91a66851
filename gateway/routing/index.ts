/**
 * The gateway end of the Owlrun node protocol: provider keys and signup, registration, the node
 * WebSocket, job offers with failover before the first byte, the relay, and the model index.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import express, { type Request, type Response, type Router } from "express";
import { WebSocket, WebSocketServer } from "ws";
import { createLogger, type Logger } from "../../src/shared/index.js";
import { Attempt } from "./attempt.js";
import { parseNodeFrame, RegisterBody } from "./protocol.js";
import { RoutingStore } from "./store.js";
import {
  type Dispatcher,
  type DispatchRequest,
  type JobHandle,
  type ModelOffer,
  NoProviderError,
} from "./types.js";

export { createProviderKey, hashProviderKey } from "./store.js";
export * from "./types.js";

export const MAX_FRAME_BYTES = 64 * 1024;

/** What the gateway tells a node in `heartbeat_ack` (its real earnings, balance and the BTC rate). */
export type AckInfo = Record<string, unknown>;

export interface RoutingOptions {
  dataDir: string;
  log?: Logger;
  /** a node silent for longer is dropped (default 90 s: three missed heartbeats) */
  heartbeatTimeoutMs?: number;
  acceptTimeoutMs?: number;
  firstByteTimeoutMs?: number;
  pingIntervalMs?: number;
  signupOpen?: boolean;
  /** signups per IP per hour */
  signupLimit?: number;
  ackInfo?: (nodeId: string) => AckInfo;
}

interface NodeConn {
  nodeId: string;
  ws: WebSocket;
  models: Set<string>;
  inflight: number;
  lastSeen: number;
  draining: boolean;
  attempts: Map<string, Attempt>;
}

function jsonError(res: Response, status: number, type: string, message: string) {
  res.status(status).json({ error: { message, type, code: status } });
}

function bearer(req: Request): string | undefined {
  return (
    /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim() ??
    (req.query.api_key as string | undefined)
  );
}

export function createRouting(opts: RoutingOptions) {
  const log = opts.log ?? createLogger("routing");
  const store = new RoutingStore(opts.dataDir);
  const acceptTimeout = opts.acceptTimeoutMs ?? 2_000;
  const firstByteTimeout = opts.firstByteTimeoutMs ?? 30_000;
  const heartbeatTimeout = opts.heartbeatTimeoutMs ?? 90_000;
  const nodes = new Map<string, NodeConn>();
  /** attempt id → attempt, for body pulls */
  const attempts = new Map<string, Attempt>();
  const signups = new Map<string, number[]>();

  // ---- HTTP -----------------------------------------------------------------------------------
  const router: Router = express.Router();

  router.post("/v1/gateway/signup", (req, res) => {
    if (opts.signupOpen === false)
      return jsonError(res, 403, "signup_closed", "provider signup is closed on this gateway");
    const ip = req.socket.remoteAddress ?? "?";
    const now = Date.now();
    const recent = (signups.get(ip) ?? []).filter((t) => t > now - 3600_000);
    if (recent.length >= (opts.signupLimit ?? 20)) {
      res.setHeader("Retry-After", "3600");
      return jsonError(res, 429, "rate_limited", "too many provider signups from this address");
    }
    signups.set(ip, [...recent, now]);
    res.status(201).json({ api_key: store.createKey("signup") });
  });

  router.post("/v1/gateway/register", (req, res) => {
    const key = bearer(req);
    if (!key || !store.isKnownKey(key)) return jsonError(res, 401, "invalid_key", "unknown provider key");
    const parsed = RegisterBody.safeParse(req.body);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      return jsonError(
        res,
        400,
        "invalid_request",
        `invalid registration: ${i?.path.join(".")} ${i?.message}`,
      );
    }
    if (parsed.data.api_key !== key)
      return jsonError(res, 403, "forbidden", "api_key in the body must match the bearer key");
    if (!store.register(key, parsed.data))
      return jsonError(res, 403, "forbidden", "that node id belongs to another key");
    const live = nodes.get(parsed.data.node_id);
    if (live) live.models = new Set(parsed.data.models);
    res.status(201).json({ status: "registered", node_id: parsed.data.node_id });
  });

  router.get("/v1/gateway/jobs/:id/proxy/request", (req, res) => {
    const key = bearer(req);
    const node = key && store.isKnownKey(key) ? store.nodeForKey(key) : undefined;
    if (!node) return jsonError(res, 401, "invalid_key", "unknown provider key");
    const attempt = attempts.get(String(req.params.id));
    if (!attempt) return jsonError(res, 404, "not_found", "no such job");
    if (attempt.node.nodeId !== node.node_id)
      return jsonError(res, 403, "forbidden", "this job is not assigned to you");
    res.json(attempt.body);
  });

  // ---- WebSocket ------------------------------------------------------------------------------
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });

  const dropNode = (conn: NodeConn, why: string) => {
    if (nodes.get(conn.nodeId) === conn) nodes.delete(conn.nodeId);
    for (const a of conn.attempts.values()) a.onDisconnect();
    conn.attempts.clear();
    log.info("node offline", { node: conn.nodeId, why });
  };

  const handleConnection = (ws: WebSocket, nodeId: string, models: string[]) => {
    const old = nodes.get(nodeId);
    if (old) {
      // A newer connection of the same node replaces the older one.
      old.ws.close(4000, "replaced by a newer connection");
      dropNode(old, "replaced");
    }
    const conn: NodeConn = {
      nodeId,
      ws,
      models: new Set(models),
      inflight: 0,
      lastSeen: Date.now(),
      draining: false,
      attempts: new Map(),
    };
    nodes.set(nodeId, conn);
    log.info("node online", { node: nodeId, models });
    const send = (msg: Record<string, unknown>) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
    };
    const misbehaved = (why: string) => {
      log.warn("disconnecting misbehaving node", { node: nodeId, why });
      ws.terminate();
    };
    ws.on("message", (raw, isBinary) => {
      conn.lastSeen = Date.now();
      if (isBinary) return misbehaved("binary frame");
      const frame = parseNodeFrame(raw.toString());
      if (frame.kind === "ignore") return;
      if (frame.kind === "invalid") return misbehaved(frame.why);
      const msg = frame.msg;
      if (msg.type === "heartbeat") {
        send({ type: "heartbeat_ack", status: "ok", ...(opts.ackInfo?.(nodeId) ?? defaultAck()) });
        return;
      }
      if (msg.type === "pong") return;
      const attempt = conn.attempts.get(msg.job_id);
      if (!attempt) return misbehaved(`message for a job it does not hold (${msg.type})`);
      if (msg.type === "accept") attempt.onAccept();
      else if (msg.type === "reject") attempt.onReject(msg.reason ?? "rejected");
      else if (msg.type === "proxy_chunk") attempt.onChunk(msg.data);
      else if (msg.type === "proxy_done") attempt.onDone(msg.error);
    });
    ws.on("close", () => dropNode(conn, "closed"));
    ws.on("error", () => ws.terminate());
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (url.pathname !== "/v1/gateway/ws") return;
    const key =
      url.searchParams.get("api_key") ?? /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const node = key && store.isKnownKey(key) ? store.nodeForKey(key) : undefined;
    if (!node) {
      socket.end(
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
          JSON.stringify({
            error: { message: "unknown provider key or node not registered", type: "invalid_key", code: 403 },
          }),
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) =>
      handleConnection(ws, node.node_id, JSON.parse(node.models) as string[]),
    );
  };

  // Liveness: ping everyone; drop nodes silent for too long.
  const ticker = setInterval(() => {
    const now = Date.now();
    for (const conn of nodes.values()) {
      if (now - conn.lastSeen > heartbeatTimeout) {
        conn.ws.terminate();
        dropNode(conn, "missed heartbeats");
      } else if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify({ type: "ping" }));
    }
  }, opts.pingIntervalMs ?? 30_000);
  ticker.unref();

  // ---- dispatch -------------------------------------------------------------------------------
  const candidates = (req: DispatchRequest): NodeConn[] => {
    const p = req.preferences ?? {};
    let list = [...nodes.values()].filter(
      (n) => !n.draining && n.models.has(req.model) && n.ws.readyState === WebSocket.OPEN,
    );
    if (p.only?.length) list = list.filter((n) => p.only!.includes(n.nodeId));
    if (p.ignore?.length) list = list.filter((n) => !p.ignore!.includes(n.nodeId));
    list.sort((a, b) => a.inflight - b.inflight);
    if (p.order?.length) {
      const rank = (n: NodeConn) => {
        const i = p.order!.indexOf(n.nodeId);
        return i < 0 ? p.order!.length : i;
      };
      list.sort((a, b) => rank(a) - rank(b));
    }
    return p.allowFallbacks === false ? list.slice(0, 1) : list;
  };

  const tryNode = async (conn: NodeConn, req: DispatchRequest): Promise<Attempt> => {
    const promptEstimate =
      Math.ceil(JSON.stringify(req.body.messages ?? req.body.prompt ?? "").length / 2) + 16;
    // Routing preferences are the gateway's business, not the node's.
    const { provider: _provider, models: _models, ...forwarded } = req.body;
    const body = {
      ...forwarded,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: req.maxTokens,
    };
    const attempt = new Attempt(
      {
        nodeId: conn.nodeId,
        send: (m) => conn.ws.readyState === WebSocket.OPEN && conn.ws.send(JSON.stringify(m)),
      },
      body,
      req.maxTokens,
      promptEstimate,
    );
    conn.attempts.set(attempt.id, attempt);
    attempts.set(attempt.id, attempt);
    conn.inflight++;
    void attempt.outcome.then((o) => {
      conn.inflight--;
      conn.attempts.delete(attempt.id);
      attempts.delete(attempt.id);
      if (o.usageDisputed) {
        store.recordDispute(
          conn.nodeId,
          `reported ${o.reportedUsage?.completionTokens} vs counted ${o.countedCompletionTokens}`,
        );
        log.warn("provider usage report disagrees with the gateway's count", { node: conn.nodeId });
      }
    });
    const onAbort = () => attempt.cancel();
    req.signal.addEventListener("abort", onAbort, { once: true });
    void attempt.outcome.then(() => req.signal.removeEventListener("abort", onAbort));
    conn.ws.send(
      JSON.stringify({
        type: "job",
        job_id: attempt.id,
        model: req.model,
        vram_required_mb: 0,
        buyer_region: "",
        free_tier: false,
      }),
    );
    const acceptTimer = setTimeout(() => {
      if (!attempt.accepted) attempt.fail("no accept in time");
    }, acceptTimeout);
    const firstTimer = setTimeout(() => attempt.fail("no first byte in time"), firstByteTimeout);
    try {
      await attempt.firstByte;
      return attempt;
    } catch (err) {
      if (attempt.accepted && !attempt.ended) attempt.cancel();
      throw err;
    } finally {
      clearTimeout(acceptTimer);
      clearTimeout(firstTimer);
    }
  };

  const dispatcher: Dispatcher = {
    async dispatch(req: DispatchRequest): Promise<JobHandle> {
      const list = candidates(req);
      if (list.length === 0)
        throw new NoProviderError(`no provider online serves ${req.model}`, "no_providers");
      const reasons: string[] = [];
      for (const conn of list) {
        if (req.signal.aborted) break;
        try {
          const attempt = await tryNode(conn, req);
          return { nodeId: conn.nodeId, chunks: attempt.chunks(), outcome: attempt.outcome };
        } catch (err) {
          reasons.push(`${conn.nodeId}: ${(err as Error).message}`);
          log.info("moving job to the next provider", { node: conn.nodeId, why: (err as Error).message });
        }
      }
      const allRejected = reasons.every((r) => r.includes("rejected"));
      throw new NoProviderError(
        reasons.join("; ") || "buyer went away",
        allRejected ? "all_rejected" : "all_failed",
      );
    },
    models(): ModelOffer[] {
      const count = new Map<string, number>();
      for (const n of nodes.values()) {
        if (n.draining || n.ws.readyState !== WebSocket.OPEN) continue;
        for (const m of n.models) count.set(m, (count.get(m) ?? 0) + 1);
      }
      return [...count]
        .map(([model, n]) => ({ model, nodes: n }))
        .sort((a, b) => a.model.localeCompare(b.model));
    },
    nodesOnline: () => nodes.size,
  };

  return {
    router,
    dispatcher,
    store,
    /** the Lightning address a node registered, for payouts */
    lightningAddressOf: (nodeId: string) => store.node(nodeId)?.lightning_address ?? undefined,
    /** tells a node to stop taking jobs (maintenance) */
    drain(nodeId: string): boolean {
      const conn = nodes.get(nodeId);
      if (!conn) return false;
      conn.draining = true;
      conn.ws.send(JSON.stringify({ type: "drain" }));
      return true;
    },
    attachWebSocket(server: Server): () => void {
      server.on("upgrade", onUpgrade);
      return () => {
        server.off("upgrade", onUpgrade);
        for (const c of wss.clients) c.terminate();
      };
    },
    async close(): Promise<void> {
      clearInterval(ticker);
      for (const c of wss.clients) c.terminate();
      wss.close();
      store.close();
    },
  };
}

export type Routing = ReturnType<typeof createRouting>;

function defaultAck(): AckInfo {
  return {
    jobs_today: 0,
    tokens_today: 0,
    earned_today_sats: 0,
    earned_total_sats: 0,
    balance_sats: 0,
    queue_depth_global: 0,
    broadcasts: [],
    withdraw_history: [],
  };
}
