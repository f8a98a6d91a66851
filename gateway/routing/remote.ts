/**
 * The seam between routing and the cluster (gateway/cluster): several gateway processes share one
 * PostgreSQL database, and a node's WebSocket is held by one of them. Routing defines what it needs
 * here and the cluster implements it, so routing imports nothing of the cluster and works exactly
 * as before when there is no database (no link joined).
 */
import type { AttemptNode } from "./attempt.js";
import type { GatewayMessage } from "./protocol.js";
import type { ModelOffer } from "./types.js";

/** What the dispatcher ranks candidates by; a local NodeSession and a RemoteNode both have it. */
export interface RankedNode {
  nodeId: string;
  readonly inflight: number;
  lastAssignedAt: number;
  readonly freeTierPct: number;
  readonly ttfbMs?: number;
  readonly tokensPerSec?: number;
  observe(ttfbMs: number | undefined, tokens: number, streamMs: number): void;
}

/** A node whose socket another gateway process holds; `send` goes there over the cluster bus. */
export interface RemoteNode extends RankedNode, AttemptNode {
  /** the id of the process holding the node's socket */
  readonly holder: string;
  /** still present, its holder alive and the node not draining */
  usable(): boolean;
}

/** A node another process holds, as its holder last published it (for status routes). */
export interface RemoteNodeStatus {
  nodeId: string;
  models: string[];
  /** jobs in flight on the node, as its holder counts them */
  inflight: number;
  draining: boolean;
  ttfbMs?: number;
  tokensPerSec?: number;
}

/** One job on a node, as the node's frames drive it: an Attempt here, or a relay to another process. */
export interface NodeJob {
  readonly wireId: string;
  onAccept(): void;
  onReject(reason: string): void;
  onChunk(data: string): void;
  onDone(error?: string | null): void;
  onDisconnect(why: string): void;
}

/** The body a node pulls for a job another process offered, as the cluster finds it. */
export type RemoteBody = { body: Record<string, unknown> } | "forbidden" | undefined;

/** What routing asks of the cluster (implemented by gateway/cluster). */
export interface ClusterLink {
  /** usable remote nodes serving `model` (embedding models with `embeddings`) */
  candidates(model: string, embeddings: boolean): RemoteNode[];
  /** models served by remote nodes, excluding nodes connected to this process */
  models(embeddings: boolean, local: ReadonlySet<string>): ModelOffer[];
  /** remote nodes online, excluding nodes connected to this process */
  nodesOnline(local: ReadonlySet<string>): number;
  /** the live state of the nodes other alive processes hold, excluding nodes connected here */
  remoteNodes(local: ReadonlySet<string>): RemoteNodeStatus[];
  /** Buyer side: an attempt on a remote node starts; the node's frames for `job.wireId` reach `job`. */
  track(node: RemoteNode, job: NodeJob, body: Record<string, unknown>): void;
  /** The attempt ended: its holder forgets the job. */
  untrack(node: RemoteNode, wireId: string): void;
  /** A node pulls the body of a job another process offered it (any process may get the pull). */
  jobBody(wireId: string, keyHash: string): Promise<RemoteBody>;
  /** this process's node sessions changed (connected, dropped, re-registered) */
  changed(): void;
}

/** A node connected to this process, as presence publishes it. */
export interface LocalNodeInfo {
  nodeId: string;
  keyHash: string;
  models: string[];
  embedModels: string[];
  freeTierPct: number;
  inflight: number;
  draining: boolean;
  connectedAt: number;
  ttfbMs?: number;
  tokensPerSec?: number;
}

/** What the cluster asks of this process's routing (the holder side). */
export interface NodeHost {
  /** alive node sessions of this process */
  localNodes(): LocalNodeInfo[];
  /** Puts a relayed job on a node connected here; false when the node is not here. */
  hostJob(nodeId: string, job: NodeJob): boolean;
  /** Sends a frame to a node connected here; false when it is not here. */
  send(nodeId: string, msg: GatewayMessage): boolean;
  /** A relayed job ended: forget it and ignore the node's late frames for it. */
  endJob(nodeId: string, wireId: string): void;
  /** The node connected to another process more recently: close this older socket. */
  replaced(nodeId: string, connectedAt: number): void;
}
