/**
 * Routing: the gateway end of the Owlrun node protocol (shared/protocols/owlrun-node.md). Provider
 * keys and signup, registration, the node WebSocket (`/v1/gateway/ws`), the provider registry with
 * health, load and a per-model index, and the dispatcher: job offers with failover before the first
 * byte, the relay of the node's SSE stream with max_tokens enforced, and usage checked against the
 * gateway's own count. This file is the folder's only door.
 *
 * Parts: `sockets.ts` (node connections and their frames), `dispatch.ts` (the dispatcher and the
 * bookkeeping of finished attempts), `node-body.ts` (what a node pulls); this file wires them.
 */
import type { Server } from "node:http";
import type { Router } from "express";
import { createLogger, type Logger } from "../../src/shared/index.js";
import type { Attempt } from "./attempt.js";
import type { RoutingContext } from "./context.js";
import { createDispatcher } from "./dispatch.js";
import { providerRouter, SignupLimiter } from "./http.js";
import type { AckInfo } from "./protocol.js";
import { Registry } from "./registry.js";
import type { ClusterLink, NodeHost } from "./remote.js";
import { CLOSE_POLICY, CLOSE_REPLACED, createNodeSockets } from "./sockets.js";
import { type RoutingStore, SqliteRoutingStore } from "./store.js";
import type { Dispatcher, ModelOffer } from "./types.js";
import { Upstreams } from "./upstream.js";
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

export { PREFILL_MS_PER_TOKEN } from "./dispatch.js";
export { CLOSE_POLICY, CLOSE_REPLACED, WS_PATH } from "./sockets.js";
export { nodeRequestBody } from "./node-body.js";

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

export function createRouting(opts: RoutingOptions): Routing {
  const log = opts.log ?? createLogger("routing");
  const store = opts.store ?? new SqliteRoutingStore(opts.dataDir);
  const heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 90_000;
  const registry = new Registry(heartbeatTimeoutMs);
  const ctx: RoutingContext = {
    log,
    store,
    registry,
    attempts: new Map<string, Attempt>(),
    state: { closed: false },
  };
  const limiter = new SignupLimiter(opts.signupsPerHour ?? 20);
  const upstreams = opts.upstreams?.length ? new Upstreams(opts.upstreams, log.child("upstream")) : undefined;

  const router = providerRouter(
    {
      store,
      registry,
      attempts: ctx.attempts,
      signupOpen: opts.signupOpen ?? true,
      allowLoopbackLnurl: opts.allowLoopbackLnurl ?? false,
      log,
      remoteBody: async (wireId, keyHash) => ctx.state.cluster?.jobBody(wireId, keyHash),
      registered: () => ctx.state.cluster?.changed(),
    },
    limiter,
  );

  // ---- cluster ----------------------------------------------------------------------------------

  const localIds = () => new Set(registry.all().map((s) => s.nodeId));
  const remoteNode = (nodeId: string) =>
    registry.get(nodeId)
      ? undefined
      : ctx.state.cluster?.remoteNodes(localIds()).find((n) => n.nodeId === nodeId);
  /** Jobs in flight on every node: this process's and those other processes hold. */
  const globalLoad = () =>
    registry.load() + (ctx.state.cluster?.remoteNodes(localIds()).reduce((n, r) => n + r.inflight, 0) ?? 0);
  /** This process's offers plus the models nodes held by other processes serve. */
  const withRemote = (offers: ModelOffer[], embeddings: boolean): ModelOffer[] => {
    if (!ctx.state.cluster) return offers;
    const byModel = new Map(offers.map((o) => [o.model, o.nodes]));
    for (const o of ctx.state.cluster.models(embeddings, localIds())) {
      byModel.set(o.model, (byModel.get(o.model) ?? 0) + o.nodes);
    }
    return [...byModel]
      .map(([model, nodes]) => ({ model, nodes }))
      .sort((a, b) => a.model.localeCompare(b.model));
  };

  const sockets = createNodeSockets(ctx, {
    heartbeatTimeoutMs,
    pingIntervalMs: opts.pingIntervalMs ?? 30_000,
    ackInfo: opts.ackInfo,
    limiter,
    globalLoad,
  });
  const { dropSession, onUpgrade } = sockets;
  const { dispatcher, served } = createDispatcher(ctx, {
    acceptTimeoutMs: opts.acceptTimeoutMs ?? 2_000,
    firstByteTimeoutMs: opts.firstByteTimeoutMs ?? 60_000,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    upstreams,
    localIds,
    withRemote,
  });

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
      if (ctx.state.closed || !s || !registry.healthy(s)) return false;
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
        sockets.terminateAll();
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
      const ids = [...localIds(), ...(ctx.state.cluster?.remoteNodes(localIds()) ?? []).map((n) => n.nodeId)];
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
      ctx.state.cluster = link;
      return host;
    },
    async close() {
      if (ctx.state.closed) return;
      // Jobs still waiting for a first byte fail (the buyer is refunded); running ones end "failed".
      for (const s of registry.all()) dropSession(s, "gateway shutting down");
      upstreams?.close();
      ctx.state.closed = true;
      await sockets.close();
      store.close();
    },
  };
}
