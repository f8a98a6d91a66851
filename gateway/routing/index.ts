/**
 * Routing: the gateway end of the Owlrun node protocol (shared/protocols/owlrun-node.md). Provider
 * keys and signup, registration, the node WebSocket (`/v1/gateway/ws`), the provider registry with
 * health, load and a per-model index, and the dispatcher: job offers with failover before the first
 * byte, the relay of the node's SSE stream with max_tokens enforced, and usage checked against the
 * gateway's own count. This file is the folder's only door.
 *
 * Job ids: every attempt gets a fresh random wire id. The buyer's job id is the hold id, which also
 * claims the buyer's change at /v1/cashu/change/:id, so it must never reach a node; and a fresh id per
 * attempt means a node that lost a job (timeout, failover) can neither pull its body nor feed chunks
 * into the attempt of the node that took over.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { Router } from "express";
import { type RawData, WebSocketServer, type WebSocket } from "ws";
import { createLogger, errorMessage, type Logger } from "../../src/shared/index.js";
import { Attempt, AttemptFailure } from "./attempt.js";
import { providerKeyOf, providerRouter, SignupLimiter } from "./http.js";
import { type AckInfo, DEFAULT_ACK, MAX_FRAME_BYTES, parseNodeFrame } from "./protocol.js";
import { inlineBodyOf, NodeSession, Registry } from "./registry.js";
import type { ClusterLink, NodeHost, RemoteNode } from "./remote.js";
import { type NodeRow, type RoutingStore, SqliteRoutingStore } from "./store.js";
import {
  type Dispatcher,
  type DispatchRequest,
  type JobHandle,
  type JobOutcome,
  type ModelOffer,
  NoProviderError,
} from "./types.js";
import { EMBEDDINGS_ENDPOINT, embeddingBounds, embeddingInputs, embeddingNodeBody } from "./embeddings.js";
import { promptBounds } from "./usage.js";
import { jobTargets, mergeOffers, type TargetAttemptOptions, Upstreams, UpstreamTarget } from "./upstream.js";
import type { UpstreamSpec } from "./upstream-config.js";

export * from "./types.js";
export { hashProviderKey, type RoutingStore } from "./store.js";
export { copyRoutingFromSqlite, createProviderKey, openRoutingStore, PgRoutingStore } from "./store-pg.js";
export { DEFAULT_ACK } from "./protocol.js";
export type { AckInfo, Broadcast, WithdrawRecord } from "./protocol.js";
export {
  LIGHTNING_ADDRESS_RE,
  MAX_FRAME_BYTES,
  MIN_REDEEM_THRESHOLD_SATS,
  PROVIDER_KEY_PREFIX,
} from "./protocol.js";
export { nodeRoutes, SignupLimiter } from "./http.js";
export { promptBounds, USAGE_TOLERANCE_FACTOR, USAGE_TOLERANCE_SLACK } from "./usage.js";
export { embeddingBounds, embeddingInputs, MAX_EMBEDDING_DIMENSIONS } from "./embeddings.js";
export {
  parseUpstreams,
  readUpstreamsFile,
  UpstreamConfigError,
  upstreamPriceFloors,
  type UpstreamSpec,
  UpstreamsFileSchema,
  type UpstreamsFile,
} from "./upstream-config.js";
export type {
  ClusterLink,
  LocalNodeInfo,
  NodeHost,
  NodeJob,
  RankedNode,
  RemoteBody,
  RemoteNode,
  RemoteNodeStatus,
} from "./remote.js";
export type { GatewayMessage } from "./protocol.js";

/**
 * Time allowed per estimated prompt token before the first answer token, on top of
 * `firstByteTimeoutMs`: a long prompt (a Claude Code turn is ~12–48k tokens) must be read before
 * anything can stream, and a CPU node reads a few hundred tokens a second.
 */
export const PREFILL_MS_PER_TOKEN = 4;

export const WS_PATH = "/v1/gateway/ws";
/** Close code sent to the older connection when the same node connects again. */
export const CLOSE_REPLACED = 4000;
/** Close code for a node that broke the protocol (RFC 6455 policy violation). */
export const CLOSE_POLICY = 1008;

export interface RoutingOptions {
  dataDir: string;
  log?: Logger;
  /** a node silent (no heartbeat, pong or other frame) for longer is dropped; default 90 s */
  heartbeatTimeoutMs?: number;
  /** a node must `accept` an offer within this; default 2 s (the Owlrun rule) */
  acceptTimeoutMs?: number;
  /**
   * the first content token must arrive within this of the offer (plus PREFILL_MS_PER_TOKEN per
   * estimated prompt token); default 60 s (cold model loads)
   */
  firstByteTimeoutMs?: number;
  /** a stream silent for this long after its first token fails; default 60 s */
  idleTimeoutMs?: number;
  /** `POST /v1/gateway/signup` issues keys; default true */
  signupOpen?: boolean;
  /** tests and the devnet: Lightning addresses on loopback hosts are accepted at registration */
  allowLoopbackLnurl?: boolean;
  /** signups per IP (IPv6: per /64) per hour; default 20 */
  signupsPerHour?: number;
  /** how often every node gets a `ping`; default 30 s */
  pingIntervalMs?: number;
  /** the node's real earnings, balance and BTC rate for `heartbeat_ack` (defaults: zeros) */
  ackInfo?: (nodeId: string) => Partial<AckInfo>;
  /** OpenAI-compatible providers that serve next to the nodes (`--upstream`, routing/upstream.ts) */
  upstreams?: UpstreamSpec[];
  /** where keys, registrations and counts live (default: `<dataDir>/routing.sqlite`); closed with routing */
  store?: RoutingStore;
}

export interface ProviderKeys {
  /** mints a new `owlr_prov_…` key (only its hash is stored) */
  create(): Promise<string>;
  /** true for a known, unrevoked key */
  verify(key: string): Promise<boolean>;
  /**
   * revokes a key and disconnects the nodes using it here; true when it was valid. Other processes
   * on the same store refuse it at once and drop its sockets at their next ping round.
   */
  revoke(key: string): Promise<boolean>;
}

export interface ProviderInfo {
  nodeId: string;
  online: boolean;
  draining: boolean;
  models: string[];
  /** jobs in flight */
  inflight: number;
  lightningAddress?: string;
  redeemThresholdSats?: number;
  region?: string;
  version?: string;
  /** how often this node's usage reports disagreed with the gateway's count */
  disputes: number;
  /** jobs it failed mid-stream (unpaid for the buyer and the node) */
  failures: number;
  jobsToday: number;
  tokensToday: number;
  /** moving averages over finished jobs */
  ttfbMs?: number;
  tokensPerSec?: number;
}

export interface Routing {
  /** `/v1/gateway/signup`, `/v1/gateway/register`, `/v1/gateway/jobs/:id/proxy/request` */
  router: Router;
  /** serves `/v1/gateway/ws` on this server; returns how to detach and end the node sockets */
  attachWebSocket(server: Server): () => void;
  dispatcher: Dispatcher;
  keys: ProviderKeys;
  /** tells the node that served the buyer's job `jobId` what it earned (`job_complete`) */
  jobComplete(jobId: string, info: { tokens: number; earnedUsd: number }): boolean;
  /** asks a node to stop taking jobs (`drain`); it stays online */
  drain(nodeId: string): boolean;
  /** registration, live status and dispute count of a node, online or not */
  node(nodeId: string): Promise<ProviderInfo | undefined>;
  /** the nodes online now */
  providers(): Promise<ProviderInfo[]>;
  /** the node a provider key last registered (for provider-authenticated routes) */
  nodeForKey(key: string): Promise<string | undefined>;
  /** nodes whose usage reports disagreed with the gateway's count, worst first */
  disputes(): Promise<{ nodeId: string; count: number; lastAt: number; lastNote: string }[]>;
  /**
   * Several gateway processes on one database (gateway/cluster): jobs may go to nodes other
   * processes hold, and this process relays jobs to the nodes it holds. Returns the holder side.
   */
  joinCluster(link: ClusterLink): NodeHost;
  close(): Promise<void>;
}

/** How many finished buyer jobs remember their node, for `job_complete`. */
const JOB_MEMORY = 10_000;

export function createRouting(opts: RoutingOptions): Routing {
  const log = opts.log ?? createLogger("routing");
  const store = opts.store ?? new SqliteRoutingStore(opts.dataDir);
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 90_000;
  const acceptTimeoutMs = opts.acceptTimeoutMs ?? 2_000;
  const firstByteTimeoutMs = opts.firstByteTimeoutMs ?? 60_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
  const pingIntervalMs = opts.pingIntervalMs ?? 30_000;
  const registry = new Registry(heartbeatTimeoutMs);
  /** live attempts by wire job id (body pulls and ownership checks) */
  const attempts = new Map<string, Attempt>();
  /** buyer job id → where it was served, for job_complete */
  const served = new Map<string, { nodeId: string; wireId: string; remote?: RemoteNode }>();
  const limiter = new SignupLimiter(opts.signupsPerHour ?? 20);
  const upstreams = opts.upstreams?.length ? new Upstreams(opts.upstreams, log.child("upstream")) : undefined;
  let closed = false;
  /** other gateway processes on the same database; undefined: this process is alone */
  let cluster: ClusterLink | undefined;

  const router = providerRouter(
    {
      store,
      registry,
      attempts,
      signupOpen: opts.signupOpen ?? true,
      allowLoopbackLnurl: opts.allowLoopbackLnurl ?? false,
      log,
      remoteBody: async (wireId, keyHash) => cluster?.jobBody(wireId, keyHash),
      registered: () => cluster?.changed(),
    },
    limiter,
  );

  // ---- sessions ---------------------------------------------------------------------------------

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
    if (wasCurrent) cluster?.changed();
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

  const onFrame = (s: NodeSession, raw: RawData) => {
    if (closed || registry.get(s.nodeId) !== s) return; // replaced or dropped: ignore stragglers
    s.lastSeen = Date.now();
    const text = Buffer.isBuffer(raw)
      ? raw.toString("utf8")
      : Array.isArray(raw)
        ? Buffer.concat(raw).toString("utf8")
        : Buffer.from(raw).toString("utf8");
    const frame = parseNodeFrame(text);
    if (frame.kind === "ignore") return; // a newer peer's message type: forward compatibility
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
    cluster?.changed();
    ws.on("message", (raw) => onFrame(s, raw));
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
    if (closed) return refuseUpgrade(socket, 503, "unavailable", "the gateway is shutting down");
    const key = providerKeyOf(req);
    void (async () => {
      const keyHash = key ? await store.keyHash(key) : undefined;
      if (!keyHash) return refuseUpgrade(socket, 403, "invalid_key", "missing or unknown provider key");
      const node = await store.nodeForKeyHash(keyHash);
      if (!node) {
        return refuseUpgrade(socket, 403, "not_registered", "register first: POST /v1/gateway/register");
      }
      if (closed) return refuseUpgrade(socket, 503, "unavailable", "the gateway is shutting down");
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

  // ---- dispatch ---------------------------------------------------------------------------------

  const onAttemptEnd = (
    s: NodeSession | RemoteNode,
    attempt: Attempt,
    outcome: JobOutcome,
    note?: string,
  ) => {
    if (s instanceof NodeSession) {
      s.attempts.delete(attempt.wireId);
      attempts.delete(attempt.wireId);
      registry.retire(s.nodeId, attempt.wireId);
    } else {
      cluster?.untrack(s, attempt.wireId);
    }
    if (closed) return;
    // Each write is started now (SQLite writes at the call, as before); none waits for another.
    const writes: Promise<void>[] = [];
    if (outcome.usageDisputed) {
      writes.push(store.recordDispute(s.nodeId, note ?? "usage disputed"));
      log.warn("provider usage report disagrees with the gateway's count", { node: s.nodeId, note });
    }
    if (outcome.status === "failed" && attempt.firstByteAt !== undefined) {
      // Failed after it started: the buyer is not charged and the node not paid; it counts here.
      writes.push(store.recordFailure(s.nodeId, outcome.error ?? "failed mid-stream"));
      log.warn("provider failed mid-stream", { node: s.nodeId, why: outcome.error });
    }
    if (attempt.free && outcome.status === "completed") writes.push(store.recordFreeJob(s.nodeId));
    if (attempt.firstByteAt !== undefined) {
      const u = outcome.billableUsage;
      writes.push(store.recordJob(s.nodeId, u.promptTokens + u.completionTokens));
      s.observe(attempt.firstByteAt - attempt.startedAt, attempt.tokens, Date.now() - attempt.firstByteAt);
    }
    for (const w of writes)
      w.catch((err) =>
        log.error("could not record a finished job", { node: s.nodeId, err: errorMessage(err) }),
      );
  };

  /** A try of the job on a node: registered so its frames (and its body pull) find it. */
  const nodeAttempt = (s: NodeSession, spec: TargetAttemptOptions): Attempt | undefined => {
    if (registry.get(s.nodeId) !== s || !registry.healthy(s)) return undefined;
    const attempt: Attempt = new Attempt({
      ...spec,
      node: s,
      onEnd: (a, outcome, note) => onAttemptEnd(s, a, outcome, note),
    });
    s.attempts.set(attempt.wireId, attempt);
    attempts.set(attempt.wireId, attempt);
    s.lastAssignedAt = Date.now();
    return attempt;
  };

  /** A try on a node another process holds: the body goes through the database, frames over the bus. */
  const remoteAttempt = (r: RemoteNode, spec: TargetAttemptOptions): Attempt | undefined => {
    if (!cluster || !r.usable()) return undefined;
    const attempt: Attempt = new Attempt({
      ...spec,
      node: r,
      onEnd: (a, outcome, note) => onAttemptEnd(r, a, outcome, note),
    });
    cluster.track(r, attempt, spec.body);
    r.lastAssignedAt = Date.now();
    return attempt;
  };

  const dispatcher: Dispatcher = {
    async dispatch(req: DispatchRequest): Promise<JobHandle> {
      if (closed) throw new NoProviderError("the gateway is shutting down", "no_providers");
      const embeddings = req.kind === "embeddings";
      const only = { free: req.free, embeddings };
      const remote = cluster?.candidates(req.model, embeddings) ?? [];
      const targets = (
        prefs: DispatchRequest["preferences"],
        kind: { free?: boolean; embeddings: boolean },
      ) => jobTargets(registry, upstreams, req.model, prefs, Date.now(), kind, remote);
      const list = targets(req.preferences, only);
      if (list.length === 0) {
        const anyone = targets({}, { embeddings }).length > 0;
        const anyFree = targets({}, only).length > 0;
        throw new NoProviderError(
          !anyone
            ? `no provider online serves ${req.model}`
            : !anyFree
              ? `no provider of ${req.model} takes free-tier jobs now; top up to pay for the request`
              : `no provider of ${req.model} matches the routing preferences`,
          "no_providers",
        );
      }
      const body = embeddings ? embeddingNodeBody(req.body, req.model) : nodeRequestBody(req);
      const prompt = embeddings ? embeddingBounds(body.input) : promptBounds(body);
      const reasons: string[] = [];
      let allRejected = true;
      for (const target of list) {
        if (req.signal.aborted || closed) break;
        const spec: TargetAttemptOptions = {
          wireId: randomUUID(),
          model: req.model,
          body,
          maxTokens: req.maxTokens,
          free: req.free,
          prompt,
          ...(embeddings
            ? { embeddings: { endpoint: EMBEDDINGS_ENDPOINT, inputs: embeddingInputs(body.input).length } }
            : {}),
          acceptTimeoutMs,
          firstByteTimeoutMs: firstByteTimeoutMs + PREFILL_MS_PER_TOKEN * prompt.estimate,
          idleTimeoutMs,
        };
        // An upstream is driven over HTTP (upstream.ts), a node another process holds over the
        // cluster bus (gateway/cluster); everything from here on is the same.
        const attempt =
          target instanceof UpstreamTarget
            ? target.attempt(spec)
            : target instanceof NodeSession
              ? nodeAttempt(target, spec)
              : remoteAttempt(target, spec);
        if (!attempt) continue; // the node went away meanwhile
        const onAbort = () => attempt.cancel();
        req.signal.addEventListener("abort", onAbort, { once: true });
        attempt.offer();
        try {
          await attempt.firstByte;
        } catch (err) {
          req.signal.removeEventListener("abort", onAbort);
          const failure = err as AttemptFailure;
          if (failure.kind !== "rejected") allRejected = false;
          reasons.push(`${target.nodeId}: ${failure.message}`);
          log.info("job moves on to the next provider", { node: target.nodeId, why: failure.message });
          continue;
        }
        void attempt.outcome.then(() => req.signal.removeEventListener("abort", onAbort));
        served.set(req.jobId, {
          nodeId: target.nodeId,
          wireId: attempt.wireId,
          remote: target instanceof NodeSession || target instanceof UpstreamTarget ? undefined : target,
        });
        if (served.size > JOB_MEMORY) served.delete(served.keys().next().value!);
        return { nodeId: target.nodeId, chunks: attempt.chunks(), outcome: attempt.outcome };
      }
      if (req.signal.aborted) {
        throw new NoProviderError("the buyer went away before a provider answered", "all_failed");
      }
      if (reasons.length === 0) {
        throw new NoProviderError(`no provider online serves ${req.model}`, "no_providers");
      }
      throw new NoProviderError(reasons.join("; "), allRejected ? "all_rejected" : "all_failed");
    },
    models: () => mergeOffers(withRemote(registry.models(), false), upstreams?.models()),
    embeddingModels: () =>
      mergeOffers(withRemote(registry.models(undefined, true), true), upstreams?.models(true)),
    nodesOnline: () => registry.online() + (cluster?.nodesOnline(localIds()) ?? 0),
  };

  // ---- cluster ----------------------------------------------------------------------------------

  const localIds = () => new Set(registry.all().map((s) => s.nodeId));
  const remoteNode = (nodeId: string) =>
    registry.get(nodeId) ? undefined : cluster?.remoteNodes(localIds()).find((n) => n.nodeId === nodeId);
  /** Jobs in flight on every node: this process's and those other processes hold. */
  const globalLoad = () =>
    registry.load() + (cluster?.remoteNodes(localIds()).reduce((n, r) => n + r.inflight, 0) ?? 0);
  /** This process's offers plus the models nodes held by other processes serve. */
  const withRemote = (offers: ModelOffer[], embeddings: boolean): ModelOffer[] => {
    if (!cluster) return offers;
    const byModel = new Map(offers.map((o) => [o.model, o.nodes]));
    for (const o of cluster.models(embeddings, localIds())) {
      byModel.set(o.model, (byModel.get(o.model) ?? 0) + o.nodes);
    }
    return [...byModel]
      .map(([model, nodes]) => ({ model, nodes }))
      .sort((a, b) => a.model.localeCompare(b.model));
  };

  const host: NodeHost = {
    localNodes: () =>
      registry
        .all()
        .filter((s) => registry.alive(s))
        .map((s) => ({
          nodeId: s.nodeId,
          keyHash: s.keyHash,
          models: [...s.models],
          embedModels: [...s.embedModels],
          freeTierPct: s.freeTierPct,
          inflight: s.inflight,
          draining: s.draining,
          connectedAt: s.connectedAt,
          ...(s.ttfbMs !== undefined ? { ttfbMs: s.ttfbMs } : {}),
          ...(s.tokensPerSec !== undefined ? { tokensPerSec: s.tokensPerSec } : {}),
        })),
    hostJob(nodeId, job) {
      const s = registry.get(nodeId);
      if (closed || !s || !registry.healthy(s)) return false;
      s.attempts.set(job.wireId, job);
      s.lastAssignedAt = Date.now();
      return true;
    },
    send(nodeId, msg) {
      const s = registry.get(nodeId);
      if (!s?.open) return false;
      s.send(msg);
      return true;
    },
    endJob(nodeId, wireId) {
      const s = registry.get(nodeId);
      if (s?.attempts.delete(wireId)) registry.retire(nodeId, wireId);
    },
    replaced(nodeId, connectedAt) {
      const s = registry.get(nodeId);
      if (s && s.connectedAt < connectedAt) {
        dropSession(s, "replaced by a newer connection to another gateway process", {
          code: CLOSE_REPLACED,
          reason: "replaced",
        });
      }
    },
  };

  // ---- operators --------------------------------------------------------------------------------

  const info = async (nodeId: string): Promise<ProviderInfo | undefined> => {
    const [row, today, dispute, failure] = await Promise.all([
      store.node(nodeId),
      store.today(nodeId),
      store.dispute(nodeId),
      store.failure(nodeId),
    ]);
    const local = registry.get(nodeId);
    // A node held by another process: its live state as that process publishes it.
    const s = local ?? remoteNode(nodeId);
    if (!row && !s) return undefined;
    return {
      nodeId,
      online: local ? registry.alive(local) : !!s,
      draining: s?.draining ?? false,
      models: s ? [...s.models] : row ? (JSON.parse(row.models) as string[]) : [],
      inflight: s?.inflight ?? 0,
      ...(row?.lightning_address ? { lightningAddress: row.lightning_address } : {}),
      ...(row?.redeem_threshold_sats ? { redeemThresholdSats: row.redeem_threshold_sats } : {}),
      ...(row?.region ? { region: row.region } : {}),
      ...(row?.version ? { version: row.version } : {}),
      disputes: dispute?.count ?? 0,
      failures: failure?.count ?? 0,
      jobsToday: today.jobs,
      tokensToday: today.tokens,
      ...(s?.ttfbMs !== undefined ? { ttfbMs: Math.round(s.ttfbMs) } : {}),
      ...(s?.tokensPerSec !== undefined ? { tokensPerSec: Math.round(s.tokensPerSec * 10) / 10 } : {}),
    };
  };

  const keys: ProviderKeys = {
    create: () => store.createKey("api"),
    verify: async (key) => (await store.keyHash(key)) !== undefined,
    async revoke(key) {
      const keyHash = await store.keyHash(key);
      if (!keyHash || !(await store.revokeKey(key))) return false;
      for (const s of registry.all()) {
        if (s.keyHash === keyHash)
          dropSession(s, "key revoked", { code: CLOSE_POLICY, reason: "key revoked" });
      }
      return true;
    },
  };

  return {
    router,
    dispatcher,
    keys,
    attachWebSocket(server: Server) {
      server.on("upgrade", onUpgrade);
      return () => {
        server.off("upgrade", onUpgrade);
        for (const s of registry.all()) dropSession(s, "gateway detached");
        for (const ws of wss.clients) ws.terminate();
      };
    },
    jobComplete(jobId, { tokens, earnedUsd }) {
      const where = served.get(jobId);
      const s = where && registry.get(where.nodeId);
      const message = {
        type: "job_complete",
        job_id: where?.wireId ?? "",
        tokens,
        earned_usd: earnedUsd,
      } as const;
      if (where?.remote) {
        where.remote.send(message);
        return true;
      }
      if (!where || !s?.open) return false;
      s.send(message);
      return true;
    },
    drain(nodeId) {
      const s = registry.get(nodeId);
      if (!s?.open) return false;
      s.draining = true;
      s.send({ type: "drain" });
      return true;
    },
    node: info,
    async nodeForKey(key) {
      const hash = await store.keyHash(key);
      return hash ? (await store.nodeForKeyHash(hash))?.node_id : undefined;
    },
    providers: async () => {
      const ids = [...localIds(), ...(cluster?.remoteNodes(localIds()) ?? []).map((n) => n.nodeId)];
      return (await Promise.all(ids.map((id) => info(id)))).filter((p): p is ProviderInfo => !!p);
    },
    disputes: async () =>
      (await store.disputes()).map((d) => ({
        nodeId: d.node_id,
        count: d.count,
        lastAt: d.last_at,
        lastNote: d.last_note,
      })),
    joinCluster(link) {
      cluster = link;
      return host;
    },
    async close() {
      if (closed) return;
      clearInterval(pinger);
      clearInterval(sweeper);
      // Jobs still waiting for a first byte fail (the buyer is refunded); running ones end "failed".
      for (const s of registry.all()) dropSession(s, "gateway shutting down");
      upstreams?.close();
      closed = true;
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      store.close();
    },
  };
}

/** The embedding models a stored registration announced (none for Owlrun agents). */
function embedModelsOf(node: NodeRow): string[] {
  try {
    const reg = JSON.parse(node.registration ?? "{}") as { embedding_models?: unknown };
    return Array.isArray(reg.embedding_models)
      ? reg.embedding_models.filter((m) => typeof m === "string")
      : [];
  } catch {
    return [];
  }
}

/**
 * The body a node pulls: the buyer's request in OpenAI chat form (the Owlrun node POSTs it to
 * Ollama's /v1/chat/completions), streaming with usage, one choice, max_tokens capped at what the
 * buyer paid for, and without gateway-only fields. A `completions` prompt becomes one user message.
 */
/** The `free_tier_pct` a node registered (0 when absent or unreadable). */
function freeTierPctOf(registration: string): number {
  try {
    const pct = (JSON.parse(registration) as { free_tier_pct?: unknown }).free_tier_pct;
    return typeof pct === "number" && pct > 0 ? Math.min(100, pct) : 0;
  } catch {
    return 0;
  }
}

export function nodeRequestBody(req: Pick<DispatchRequest, "body" | "model" | "kind" | "maxTokens">) {
  const body: Record<string, unknown> = { ...req.body };
  for (const k of ["provider", "models", "user", "n", "stream_options"]) delete body[k];
  if (req.kind === "completions") {
    const p = body.prompt;
    const text = Array.isArray(p) ? p.map(String).join("\n") : typeof p === "string" ? p : "";
    for (const k of ["prompt", "suffix", "echo", "best_of", "logprobs"]) delete body[k];
    body.messages = [{ role: "user", content: text }];
  }
  body.model = req.model;
  body.stream = true;
  body.stream_options = { include_usage: true };
  body.max_tokens = req.maxTokens;
  if ("max_completion_tokens" in body) body.max_completion_tokens = req.maxTokens;
  return body;
}
