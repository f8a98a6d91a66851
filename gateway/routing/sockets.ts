/**
 * The node connections of routing: the WebSocket upgrade (`/v1/gateway/ws`, provider key checked),
 * one `NodeSession` per connection, the frames a node sends routed to its attempts, heartbeat acks,
 * pings and the sweep of silent nodes. A node that breaks the protocol is disconnected.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, WebSocketServer, type WebSocket } from "ws";
import { errorMessage } from "../../src/shared/index.js";
import { ChunkBatch } from "./chunk-batch.js";
import type { RoutingContext } from "./context.js";
import { providerKeyOf, type SignupLimiter } from "./http.js";
import { type AckInfo, DEFAULT_ACK, MAX_FRAME_BYTES, parseNodeFrame } from "./protocol.js";
import { inlineBodyOf, NodeSession } from "./registry.js";
import type { NodeRow } from "./store.js";
import { embedModelsOf, freeTierPctOf } from "./node-body.js";

export const WS_PATH = "/v1/gateway/ws";
/** Close code sent to the older connection when the same node connects again. */
export const CLOSE_REPLACED = 4000;
/** Close code for a node that broke the protocol (RFC 6455 policy violation). */
export const CLOSE_POLICY = 1008;

export interface NodeSocketOptions {
  heartbeatTimeoutMs: number;
  pingIntervalMs: number;
  ackInfo?: (nodeId: string) => Partial<AckInfo>;
  limiter: SignupLimiter;
  /** jobs in flight on every node, this process's and other processes' (`queue_depth_global`) */
  globalLoad(): number;
}

export interface NodeSockets {
  /** Takes a session out of service: its jobs fail (failover if before the first byte). */
  dropSession(s: NodeSession, why: string, close?: { code: number; reason: string }): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** ends every node socket (detach) */
  terminateAll(): void;
  /** stops the timers and the WebSocket server */
  close(): Promise<void>;
}

export function createNodeSockets(ctx: RoutingContext, opts: NodeSocketOptions): NodeSockets {
  const { log, store, registry } = ctx;
  const { heartbeatTimeoutMs, pingIntervalMs, limiter, globalLoad } = opts;
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });

  /** Takes a session out of service: its jobs fail (failover if before the first byte). */
  const dropSession = (s: NodeSession, why: string, close?: { code: number; reason: string }) => {
    const wasCurrent = registry.remove(s);
    for (const a of [...s.attempts.values()]) a.onDisconnect(`provider disconnected: ${why}`);
    if (close && s.ws.readyState <= 1) {
      s.ws.close(close.code, close.reason.slice(0, 120));
      setTimeout(() => s.ws.terminate(), 1_000).unref();
    } else if (!close) {
      s.ws.terminate();
    }
    if (wasCurrent) log.info("node offline", { node: s.nodeId, why });
    if (wasCurrent) ctx.state.cluster?.changed();
  };

  const misbehaved = (s: NodeSession, why: string) => {
    log.warn("disconnecting a node that broke the protocol", { node: s.nodeId, why });
    dropSession(s, why, { code: CLOSE_POLICY, reason: why });
  };

  const sendAck = (s: NodeSession) => {
    const now = Date.now();
    // A node that floods heartbeats gets at most one ack a second (ackInfo may read the ledger).
    if (now - s.lastAckAt < 1_000) return;
    s.lastAckAt = now;
    let extra: Partial<AckInfo> = {};
    try {
      extra = opts.ackInfo?.(s.nodeId) ?? {};
    } catch (err) {
      log.error("ackInfo failed; sending defaults", { node: s.nodeId, err: errorMessage(err) });
    }
    void Promise.all([store.today(s.nodeId, now), store.freeJobs(s.nodeId)])
      .then(([today, karma]) =>
        s.send({
          ...DEFAULT_ACK,
          jobs_today: today.jobs,
          tokens_today: today.tokens,
          // Free jobs earn karma, not sats: one point per free job served.
          karma_score: karma,
          free_tier_jobs: karma,
          queue_depth_global: globalLoad(),
          ...extra,
          type: "heartbeat_ack",
        }),
      )
      .catch((err) =>
        log.error("could not read a node's counts for its ack", { node: s.nodeId, err: errorMessage(err) }),
      );
  };

  const onFrame = (s: NodeSession, raw: RawData, batch: ChunkBatch) => {
    if (ctx.state.closed || registry.get(s.nodeId) !== s) return; // replaced or dropped: ignore stragglers
    s.lastSeen = Date.now();
    const text = Buffer.isBuffer(raw)
      ? raw.toString("utf8")
      : Array.isArray(raw)
        ? Buffer.concat(raw).toString("utf8")
        : Buffer.from(raw).toString("utf8");
    const frame = parseNodeFrame(text);
    if (frame.kind === "ignore") return; // a newer peer's message type: forward compatibility
    const chunk = frame.kind === "message" && frame.msg.type === "proxy_chunk" ? frame.msg : undefined;
    const held = chunk && s.attempts.get(chunk.job_id);
    if (chunk && held) return batch.add(held, chunk.data);
    // Anything else acts after the chunks that came before it (chunk-batch.ts).
    batch.flush();
    if (frame.kind === "invalid") return misbehaved(s, frame.why);
    const msg = frame.msg;
    switch (msg.type) {
      case "heartbeat": {
        const { type: _type, ...telemetry } = msg;
        s.telemetry = telemetry;
        return sendAck(s);
      }
      case "pong":
        return;
    }
    const attempt = s.attempts.get(msg.job_id);
    if (!attempt) {
      if (registry.isRetired(s.nodeId, msg.job_id)) {
        // The job moved on (timeout, failover, cancel): a late accept must not start work.
        if (msg.type === "accept") s.send({ type: "cancel", job_id: msg.job_id });
        return;
      }
      return misbehaved(s, `${msg.type} for a job it does not hold`);
    }
    switch (msg.type) {
      case "accept":
        return attempt.onAccept();
      case "reject":
        return attempt.onReject(msg.reason || "no reason given");
      case "proxy_chunk":
        return attempt.onChunk(msg.data);
      case "proxy_done":
        return attempt.onDone(msg.error);
    }
  };

  const onConnection = (ws: WebSocket, node: NodeRow, keyHash: string) => {
    const s = new NodeSession(
      node.node_id,
      keyHash,
      ws,
      JSON.parse(node.models) as string[],
      embedModelsOf(node),
    );
    s.freeTierPct = freeTierPctOf(node.registration);
    s.inlineBody = inlineBodyOf(node.registration);
    const old = registry.add(s);
    if (old) dropSession(old, "replaced by a newer connection", { code: CLOSE_REPLACED, reason: "replaced" });
    log.info("node online", { node: s.nodeId, models: [...s.models] });
    ctx.state.cluster?.changed();
    const batch = new ChunkBatch();
    ws.on("message", (raw) => onFrame(s, raw, batch));
    ws.on("close", () => dropSession(s, "connection closed"));
    ws.on("error", (err) => log.debug("node socket error", { node: s.nodeId, err: errorMessage(err) }));
  };

  const refuseUpgrade = (socket: Duplex, status: number, type: string, message: string) => {
    const body = JSON.stringify({ error: { message, type, code: status } });
    const text = status === 401 ? "Unauthorized" : status === 503 ? "Service Unavailable" : "Forbidden";
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (new URL(req.url ?? "/", "http://gateway").pathname !== WS_PATH) return; // another room's socket
    socket.on("error", () => socket.destroy());
    if (ctx.state.closed) return refuseUpgrade(socket, 503, "unavailable", "the gateway is shutting down");
    const key = providerKeyOf(req);
    void (async () => {
      const keyHash = key ? await store.keyHash(key) : undefined;
      if (!keyHash) return refuseUpgrade(socket, 403, "invalid_key", "missing or unknown provider key");
      const node = await store.nodeForKeyHash(keyHash);
      if (!node) {
        return refuseUpgrade(socket, 403, "not_registered", "register first: POST /v1/gateway/register");
      }
      if (ctx.state.closed) return refuseUpgrade(socket, 503, "unavailable", "the gateway is shutting down");
      wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, node, keyHash));
    })().catch((err) => {
      log.error("could not check a node's key", { err: errorMessage(err) });
      refuseUpgrade(socket, 503, "unavailable", "the gateway cannot check keys right now");
    });
  };

  // Liveness: ping every node; drop the ones silent past the heartbeat timeout.
  // Keys revoked through another process on the same store end their sockets here too.
  const pinger = setInterval(() => {
    const sessions = registry.all();
    for (const s of sessions) s.send({ type: "ping" });
    void store
      .revokedAmong([...new Set(sessions.map((s) => s.keyHash))])
      .then((revoked) => {
        for (const s of sessions)
          if (revoked.includes(s.keyHash) && registry.get(s.nodeId) === s)
            dropSession(s, "key revoked", { code: CLOSE_POLICY, reason: "key revoked" });
      })
      .catch((err) => log.warn("could not check provider keys", { err: errorMessage(err) }));
  }, pingIntervalMs);
  pinger.unref();
  const sweeper = setInterval(
    () => {
      for (const s of registry.stale()) dropSession(s, "missed heartbeats");
      limiter.prune();
    },
    Math.max(25, Math.min(5_000, heartbeatTimeoutMs / 4)),
  );
  sweeper.unref();

  return {
    dropSession,
    onUpgrade,
    terminateAll: () => {
      for (const ws of wss.clients) ws.terminate();
    },
    async close() {
      clearInterval(pinger);
      clearInterval(sweeper);
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
