/**
 * The live provider registry: one session per connected node (a newer connection replaces the
 * older), its health (last frame seen, draining), its load (jobs in flight), a per-model index, and
 * the order in which a job's candidates are tried.
 */
import { WebSocket } from "ws";
import type { AttemptNode } from "./attempt.js";
import type { GatewayMessage, HeartbeatMessage } from "./protocol.js";
import type { NodeJob, RankedNode } from "./remote.js";
import type { ModelOffer, RoutingPreferences } from "./types.js";

/** Job ids a node held that ended (failover, cancel, max_tokens): late frames for them are ignored. */
const RETIRED_PER_NODE = 256;

/** Whether a stored registration asked for the job body in the offer (`inline_job_body`). */
export function inlineBodyOf(registration: string | null | undefined): boolean {
  try {
    return (JSON.parse(registration ?? "{}") as { inline_job_body?: unknown }).inline_job_body === true;
  } catch {
    return false;
  }
}

export class NodeSession implements AttemptNode, RankedNode {
  /** set through Registry.setModels so the per-model index follows */
  models: ReadonlySet<string>;
  /** models it embeds with (`embedding_models`, our extension); empty for Owlrun agents */
  embedModels: ReadonlySet<string>;
  readonly connectedAt = Date.now();
  lastSeen = Date.now();
  lastAssignedAt = 0;
  lastAckAt = 0;
  draining = false;
  /** the share of its work the node offers free (`free_tier_pct` at registration); 0: paid jobs only */
  freeTierPct = 0;
  /** the node registered `inline_job_body` (our extension): its offers carry the body */
  inlineBody = false;
  /** jobs in flight on this connection, by wire job id (relays for other processes' buyers too) */
  readonly attempts = new Map<string, NodeJob>();
  telemetry: Partial<Omit<HeartbeatMessage, "type">> = {};
  /** moving averages from finished jobs, for `sort: latency | throughput` */
  ttfbMs?: number;
  tokensPerSec?: number;

  constructor(
    readonly nodeId: string,
    readonly keyHash: string,
    readonly ws: WebSocket,
    models: string[],
    embedModels: string[] = [],
  ) {
    this.models = new Set(models);
    this.embedModels = new Set(embedModels);
  }

  get inflight(): number {
    return this.attempts.size;
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(msg: GatewayMessage): void {
    if (this.open) this.ws.send(JSON.stringify(msg));
  }

  /** Folds a finished job into the moving averages. */
  observe(ttfbMs: number | undefined, tokens: number, streamMs: number): void {
    const ewma = (old: number | undefined, v: number) => (old === undefined ? v : old * 0.7 + v * 0.3);
    if (ttfbMs !== undefined) this.ttfbMs = ewma(this.ttfbMs, ttfbMs);
    if (tokens > 1 && streamMs > 0) this.tokensPerSec = ewma(this.tokensPerSec, (tokens * 1000) / streamMs);
  }
}

export class Registry {
  private readonly sessions = new Map<string, NodeSession>();
  /** model → sessions serving it */
  private readonly byModel = new Map<string, Set<NodeSession>>();
  /** embedding model → sessions that embed with it */
  private readonly byEmbedModel = new Map<string, Set<NodeSession>>();
  private readonly retired = new Map<string, Set<string>>();

  constructor(private readonly heartbeatTimeoutMs: number) {}

  /** Adds a session; returns the older session of the same node it replaces, if any. */
  add(session: NodeSession): NodeSession | undefined {
    const old = this.sessions.get(session.nodeId);
    if (old) this.unindex(old);
    this.sessions.set(session.nodeId, session);
    this.index(session);
    return old;
  }

  /** Removes a session if it is still the node's current one. */
  remove(session: NodeSession): boolean {
    if (this.sessions.get(session.nodeId) !== session) return false;
    this.sessions.delete(session.nodeId);
    this.unindex(session);
    return true;
  }

  /** A node re-registered with another model list while connected. */
  setModels(session: NodeSession, models: string[], embedModels: string[] = []): void {
    const current = this.sessions.get(session.nodeId) === session;
    if (current) this.unindex(session);
    session.models = new Set(models);
    session.embedModels = new Set(embedModels);
    if (current) this.index(session);
  }

  private index(s: NodeSession): void {
    const add = (map: Map<string, Set<NodeSession>>, m: string) => {
      let set = map.get(m);
      if (!set) map.set(m, (set = new Set()));
      set.add(s);
    };
    for (const m of s.models) add(this.byModel, m);
    for (const m of s.embedModels) add(this.byEmbedModel, m);
  }

  private unindex(s: NodeSession): void {
    const drop = (map: Map<string, Set<NodeSession>>, m: string) => {
      const set = map.get(m);
      set?.delete(s);
      if (set?.size === 0) map.delete(m);
    };
    for (const m of s.models) drop(this.byModel, m);
    for (const m of s.embedModels) drop(this.byEmbedModel, m);
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  all(): NodeSession[] {
    return [...this.sessions.values()];
  }

  /** connected and heard from within the heartbeat timeout */
  alive(s: NodeSession, now = Date.now()): boolean {
    return s.open && now - s.lastSeen <= this.heartbeatTimeoutMs && this.sessions.get(s.nodeId) === s;
  }

  /** alive and taking jobs */
  healthy(s: NodeSession, now = Date.now()): boolean {
    return !s.draining && this.alive(s, now);
  }

  /** Sessions silent for longer than the heartbeat timeout. */
  stale(now = Date.now()): NodeSession[] {
    return this.all().filter((s) => now - s.lastSeen > this.heartbeatTimeoutMs);
  }

  retire(nodeId: string, wireId: string): void {
    let set = this.retired.get(nodeId);
    if (!set) this.retired.set(nodeId, (set = new Set()));
    set.add(wireId);
    if (set.size > RETIRED_PER_NODE) set.delete(set.values().next().value!);
  }

  isRetired(nodeId: string, wireId: string): boolean {
    return this.retired.get(nodeId)?.has(wireId) ?? false;
  }

  /**
   * The nodes to try for a model, best first: healthy nodes serving it, filtered by `only` and
   * `ignore`; ordered by `sort` (latency / throughput from past jobs) or else least loaded, ties to
   * the node that waited longest; nodes named in `order` go first, in that order; with
   * `allowFallbacks: false` only the first is tried. Free-tier jobs only go to nodes that opted in.
   */
  candidates<T extends RankedNode = never>(
    model: string,
    prefs: RoutingPreferences = {},
    now = Date.now(),
    /**
     * `free`: only nodes that opted into free work; `embeddings`: an embeddings job, only nodes
     * that announced the model in `embedding_models`
     */
    kind: { free?: boolean; embeddings?: boolean } = {},
    /** nodes held by other gateway processes, already known to serve the model (cluster) */
    remote: readonly T[] = [],
  ): (NodeSession | T)[] {
    const admitted = admits(prefs);
    const wanted = (s: RankedNode) => admitted(s.nodeId) && (!kind.free || s.freeTierPct > 0);
    const index = kind.embeddings ? this.byEmbedModel : this.byModel;
    const list: (NodeSession | T)[] = [...(index.get(model) ?? [])].filter(
      (s) => this.healthy(s, now) && wanted(s),
    );
    // A node connected here is used through its own socket, whatever another process last said.
    for (const r of remote) if (!this.sessions.has(r.nodeId) && wanted(r)) list.push(r);
    return rankTargets(list, prefs);
  }

  /** Models served (or, with `embeddings`, embedded with) by at least one healthy node. */
  models(now = Date.now(), embeddings = false): ModelOffer[] {
    const offers: ModelOffer[] = [];
    for (const [model, set] of embeddings ? this.byEmbedModel : this.byModel) {
      let nodes = 0;
      for (const s of set) if (this.healthy(s, now)) nodes++;
      if (nodes > 0) offers.push({ model, nodes });
    }
    return offers.sort((a, b) => a.model.localeCompare(b.model));
  }

  /** Connected nodes that are alive (draining ones included: they are online, just not taking jobs). */
  online(now = Date.now()): number {
    let n = 0;
    for (const s of this.sessions.values()) if (this.alive(s, now)) n++;
    return n;
  }

  /** Jobs in flight across all nodes (`queue_depth_global` in heartbeat_ack). */
  load(): number {
    let n = 0;
    for (const s of this.sessions.values()) n += s.inflight;
    return n;
  }
}

/** What the ranking reads of a target: nodes and upstream providers alike (routing/upstream.ts). */
export interface RankedTarget {
  nodeId: string;
  inflight: number;
  lastAssignedAt: number;
  ttfbMs?: number;
  tokensPerSec?: number;
}

/** The `only` / `ignore` routing preferences as a test on a target id. */
export function admits(prefs: RoutingPreferences = {}): (id: string) => boolean {
  const only = prefs.only?.length ? new Set(prefs.only) : undefined;
  const ignore = new Set(prefs.ignore ?? []);
  return (id) => (!only || only.has(id)) && !ignore.has(id);
}

/**
 * The order in which a job's targets are tried (the routing rules, one place for nodes and
 * upstreams): by `sort` (latency / throughput from past jobs) or else least loaded, ties to the
 * target that waited longest; targets named in `order` first, in that order; with
 * `allowFallbacks: false` only the first.
 */
export function rankTargets<T extends RankedTarget>(list: T[], prefs: RoutingPreferences = {}): T[] {
  const byLoad = (a: T, b: T) => a.inflight - b.inflight || a.lastAssignedAt - b.lastAssignedAt;
  if (prefs.sort === "latency") {
    list.sort((a, b) => (a.ttfbMs ?? Infinity) - (b.ttfbMs ?? Infinity) || byLoad(a, b));
  } else if (prefs.sort === "throughput") {
    list.sort((a, b) => (b.tokensPerSec ?? 0) - (a.tokensPerSec ?? 0) || byLoad(a, b));
  } else {
    // "price": every target of a model is sold at the model's one rate here, so load decides.
    list.sort(byLoad);
  }
  if (prefs.order?.length) {
    const rank = new Map(prefs.order.map((id, i) => [id, i] as const));
    const r = (s: T) => rank.get(s.nodeId) ?? prefs.order!.length;
    list.sort((a, b) => r(a) - r(b)); // stable: the rest keep their order
  }
  return prefs.allowFallbacks === false ? list.slice(0, 1) : list;
}
