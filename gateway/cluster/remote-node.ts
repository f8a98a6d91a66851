/**
 * Both ends of a job that crosses processes. Buyer side: a RemoteNodeView is a node another process
 * holds, as presence last described it; the dispatcher ranks and offers to it like a local session.
 * Holder side: a Relay sits in the node's session as the job and passes the node's frames to the
 * buyer's process unchanged (the buyer's Attempt counts, enforces max_tokens and bills).
 */
import type { GatewayMessage, NodeJob, RemoteNode } from "../routing/index.js";
import type { BusMessage } from "./messages.js";
import type { PresenceRow } from "./presence.js";

export interface RemoteNodeLink {
  send(node: RemoteNodeView, msg: GatewayMessage): void;
  usable(node: RemoteNodeView): boolean;
}

export class RemoteNodeView implements RemoteNode {
  holder = "";
  keyHash = "";
  models: ReadonlySet<string> = new Set();
  embedModels: ReadonlySet<string> = new Set();
  freeTierPct = 0;
  draining = false;
  /** jobs in flight on the node as its holder last published */
  reported = 0;
  /** attempts this process has running on it (not yet in the holder's published count) */
  own = 0;
  lastAssignedAt = 0;
  ttfbMs?: number;
  tokensPerSec?: number;
  /** the holder's own averages, until this process has observed jobs of its own */
  private observed = false;

  constructor(
    readonly nodeId: string,
    private readonly link: RemoteNodeLink,
  ) {}

  update(row: PresenceRow): void {
    this.holder = row.processId;
    this.keyHash = row.keyHash;
    this.models = new Set(row.models);
    this.embedModels = new Set(row.embedModels);
    this.freeTierPct = row.freeTierPct;
    this.draining = row.draining;
    this.reported = row.inflight;
    if (!this.observed) {
      this.ttfbMs = row.ttfbMs;
      this.tokensPerSec = row.tokensPerSec;
    }
  }

  get inflight(): number {
    return this.reported + this.own;
  }

  usable(): boolean {
    return this.link.usable(this);
  }

  send(msg: GatewayMessage): void {
    this.link.send(this, msg);
  }

  observe(ttfbMs: number | undefined, tokens: number, streamMs: number): void {
    this.observed = true;
    const ewma = (old: number | undefined, v: number) => (old === undefined ? v : old * 0.7 + v * 0.3);
    if (ttfbMs !== undefined) this.ttfbMs = ewma(this.ttfbMs, ttfbMs);
    if (tokens > 1 && streamMs > 0) this.tokensPerSec = ewma(this.tokensPerSec, (tokens * 1000) / streamMs);
  }
}

/** A job of another process's buyer on a node connected here. */
export class Relay implements NodeJob {
  constructor(
    readonly wireId: string,
    readonly nodeId: string,
    /** the buyer's process */
    readonly buyer: string,
    private readonly out: (buyer: string, msg: BusMessage) => void,
    /** the relay is over (done, reject, disconnect): forget it */
    private readonly ended: (relay: Relay) => void,
  ) {}

  onAccept(): void {
    this.out(this.buyer, { t: "accept", wire: this.wireId });
  }

  onReject(reason: string): void {
    this.out(this.buyer, { t: "reject", wire: this.wireId, reason });
    this.ended(this);
  }

  onChunk(data: string): void {
    this.out(this.buyer, { t: "chunk", wire: this.wireId, data });
  }

  onDone(error?: string | null): void {
    this.out(this.buyer, { t: "done", wire: this.wireId, ...(error ? { error } : {}) });
    this.ended(this);
  }

  onDisconnect(why: string): void {
    this.out(this.buyer, { t: "gone", wire: this.wireId, why });
    this.ended(this);
  }
}
