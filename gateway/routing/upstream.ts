/**
 * Upstream providers as dispatch targets. An upstream is one more target next to the nodes: the
 * dispatcher ranks both by the same rules (registry.ts `rankTargets`) and drives both through the
 * same `Attempt` (attempt.ts), so max_tokens, the usage check, timeouts, failover before the first
 * token and the failed/cancelled outcomes are one code path. Only the transport differs: where a
 * node gets a `job` frame and relays `proxy_chunk`s, an upstream link POSTs the job body to
 * `{base}/chat/completions` (or `/embeddings`) and feeds the HTTP response into the attempt.
 *
 * The key: sent only in the Authorization header; every text from the upstream that reaches a
 * buyer or a log (stream lines, error messages) has it scrubbed, and upstream error bodies are
 * logged, never relayed.
 */
import { type Logger, errorMessage } from "../../src/shared/index.js";
import { UPSTREAM_TARGET_PREFIX } from "../ledger/index.js";
import { Attempt, type AttemptNode, type AttemptOptions } from "./attempt.js";
import { MAX_EMBEDDING_ANSWER_BYTES } from "./embeddings.js";
import type { GatewayMessage } from "./protocol.js";
import { admits, type NodeSession, rankTargets, type Registry } from "./registry.js";
import type { RemoteNode } from "./remote.js";
import { MAX_SSE_LINE } from "./sse.js";
import type { ModelOffer, RoutingPreferences } from "./types.js";
import type { UpstreamSpec } from "./upstream-config.js";
import { jsonAnswerAsSse } from "./upstream-json.js";

/** A 429 without a usable Retry-After keeps the upstream out of rotation this long. */
const DEFAULT_RETRY_AFTER_MS = 2_000;
/** …and a Retry-After never keeps it out longer than this. */
const MAX_RETRY_AFTER_MS = 10 * 60_000;
/** The most of an upstream's error body kept for the operator's log. */
const ERROR_BODY_LOG_CHARS = 300;

/** One attempt's options as the dispatcher builds them for any target. */
export type TargetAttemptOptions = Omit<AttemptOptions, "node" | "onEnd">;

export class UpstreamTarget {
  /** `upstream:<name>`: where a node id would be (X-Owlrun-Node, routing preferences, the ledger) */
  readonly nodeId: string;
  inflight = 0;
  lastAssignedAt = 0;
  ttfbMs?: number;
  tokensPerSec?: number;
  /** usage reports that disagreed with the gateway's count, and jobs failed after the first token */
  disputes = 0;
  failures = 0;
  /** a 429's Retry-After: not offered jobs before this */
  private coolUntil = 0;
  private readonly links = new Set<UpstreamLink>();

  constructor(
    readonly spec: UpstreamSpec,
    private readonly log: Logger,
  ) {
    this.nodeId = UPSTREAM_TARGET_PREFIX + spec.name;
  }

  serves(model: string, embeddings: boolean): boolean {
    return (embeddings ? this.spec.embeddings : this.spec.chat).has(model);
  }

  healthy(now = Date.now()): boolean {
    return now >= this.coolUntil;
  }

  /** The upstream said 429: keep it out of rotation for its Retry-After. */
  coolDown(ms: number): void {
    this.coolUntil = Math.max(this.coolUntil, Date.now() + Math.min(MAX_RETRY_AFTER_MS, ms));
  }

  /** One try of a job here; the dispatcher calls `offer()` on it as on a node's. */
  attempt(opts: TargetAttemptOptions): Attempt {
    const embeddings = opts.embeddings !== undefined;
    const map = embeddings ? this.spec.embeddings : this.spec.chat;
    const link = new UpstreamLink(this, {
      path: embeddings ? "/embeddings" : "/chat/completions",
      body: { ...opts.body, model: map.get(opts.model) ?? opts.model },
      log: this.log,
    });
    const attempt = new Attempt({
      ...opts,
      node: link,
      // "Accepted" here means the upstream answered with its headers.
      acceptTimeoutMs: this.spec.timeoutMs,
      onEnd: (a, outcome, note) => {
        this.inflight--;
        this.links.delete(link);
        if (outcome.usageDisputed) {
          this.disputes++;
          this.log.warn("upstream usage report disagrees with the gateway's count", {
            upstream: this.spec.name,
            note,
          });
        }
        if (outcome.status === "failed" && a.firstByteAt !== undefined) {
          this.failures++;
          this.log.warn("upstream failed mid-stream", { upstream: this.spec.name, why: outcome.error });
        }
        if (a.firstByteAt !== undefined) this.observe(a, Date.now());
      },
    });
    link.bind(attempt);
    this.links.add(link);
    this.inflight++;
    this.lastAssignedAt = Date.now();
    return attempt;
  }

  /** Ends every request in flight (the gateway is closing). */
  close(): void {
    for (const link of this.links) link.abort();
  }

  /** Removes the key from any text that may reach a buyer or a log. */
  scrub(text: string): string {
    const key = this.spec.apiKey;
    return key && text.includes(key) ? text.split(key).join("[redacted]") : text;
  }

  private observe(a: Attempt, now: number): void {
    const ewma = (old: number | undefined, v: number) => (old === undefined ? v : old * 0.7 + v * 0.3);
    this.ttfbMs = ewma(this.ttfbMs, a.firstByteAt! - a.startedAt);
    const streamMs = now - a.firstByteAt!;
    if (a.tokens > 1 && streamMs > 0)
      this.tokensPerSec = ewma(this.tokensPerSec, (a.tokens * 1000) / streamMs);
  }
}

/**
 * One HTTP request to an upstream, speaking to its `Attempt` as a node's frames would: the `job`
 * the attempt offers starts the request, `cancel` aborts it; headers are the accept, response text
 * the chunks, the end of the body `proxy_done`, a broken body a disconnect.
 */
class UpstreamLink implements AttemptNode {
  readonly nodeId: string;
  /** upstreams authenticate with the operator's key, not a provider key */
  readonly keyHash = "";
  private readonly controller = new AbortController();
  private target!: Attempt;

  constructor(
    private readonly upstream: UpstreamTarget,
    private readonly req: { path: string; body: Record<string, unknown>; log: Logger },
  ) {
    this.nodeId = upstream.nodeId;
  }

  bind(attempt: Attempt): void {
    this.target = attempt;
    // However the attempt ends (max_tokens, a bad chunk, the buyer left), the request ends too.
    void attempt.outcome.then(() => this.abort());
  }

  abort(): void {
    this.controller.abort();
  }

  send(msg: GatewayMessage): void {
    if (msg.type === "job") {
      void this.run().catch((err) =>
        this.target.fail(`${this.nodeId}: ${this.upstream.scrub(errorMessage(err))}`, false),
      );
    } else if (msg.type === "cancel") this.abort();
  }

  private async run(): Promise<void> {
    const a = this.target;
    const { spec } = this.upstream;
    let res: Response;
    try {
      res = await fetch(spec.baseUrl + this.req.path, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: this.req.path === "/embeddings" ? "application/json" : "text/event-stream",
          ...(spec.apiKey ? { Authorization: `Bearer ${spec.apiKey}` } : {}),
        },
        body: JSON.stringify(this.req.body),
        signal: this.controller.signal,
      });
    } catch (err) {
      return a.fail(`${this.nodeId} unreachable: ${this.upstream.scrub(causeOf(err))}`, false);
    }
    if (a.ended) return void res.body?.cancel().catch(() => undefined);
    if (!res.ok) return this.refused(res);
    a.onAccept();
    const json = (res.headers.get("content-type") ?? "").includes("application/json");
    if (json && this.req.path !== "/embeddings") return this.nonStreamed(res);
    await this.relay(res);
  }

  /** A non-2xx answer before anything was relayed: the job moves on; the body goes to the log only. */
  private async refused(res: Response): Promise<void> {
    const a = this.target;
    const body = this.upstream.scrub((await res.text().catch(() => "")).slice(0, ERROR_BODY_LOG_CHARS));
    this.req.log.warn("upstream refused a job", {
      upstream: this.upstream.spec.name,
      status: res.status,
      body,
    });
    if (res.status === 429) {
      this.upstream.coolDown(retryAfterMs(res.headers.get("retry-after")) ?? DEFAULT_RETRY_AFTER_MS);
      return a.onReject(`rate limited by ${this.nodeId} (HTTP 429)`);
    }
    a.fail(`${this.nodeId} answered HTTP ${res.status}`, false);
  }

  /** Streams the body into the attempt line by line (so the key can be scrubbed from whole lines). */
  private async relay(res: Response): Promise<void> {
    const a = this.target;
    if (!res.body) return a.onDone();
    const limit = this.req.path === "/embeddings" ? MAX_EMBEDDING_ANSWER_BYTES : MAX_SSE_LINE;
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const bytes of res.body as AsyncIterable<Uint8Array>) {
        pending += decoder.decode(bytes, { stream: true });
        const cut = pending.lastIndexOf("\n");
        // A line longer than any valid one goes through as it is: the attempt refuses it.
        const upTo = cut >= 0 ? cut + 1 : pending.length > limit ? pending.length : 0;
        if (upTo > 0) {
          a.onChunk(this.upstream.scrub(pending.slice(0, upTo)));
          pending = pending.slice(upTo);
        }
        if (a.ended) return;
      }
      pending += decoder.decode();
      if (pending !== "") a.onChunk(this.upstream.scrub(pending));
      a.onDone();
    } catch (err) {
      a.onDisconnect(`${this.nodeId}: the stream broke: ${this.upstream.scrub(causeOf(err))}`);
    }
  }

  /** An upstream that answered a streamed request with one JSON object (some do). */
  private async nonStreamed(res: Response): Promise<void> {
    const a = this.target;
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      return a.onDisconnect(`${this.nodeId}: the answer broke: ${this.upstream.scrub(causeOf(err))}`);
    }
    if (text.length > MAX_SSE_LINE) return a.fail(`${this.nodeId} sent an oversized answer`, false);
    const sse = jsonAnswerAsSse(this.upstream.scrub(text));
    if (sse === undefined)
      return a.fail(`${this.nodeId} sent an answer that is not a chat completion`, false);
    a.onChunk(sse);
    a.onDone();
  }
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}

/** fetch's "fetch failed" hides the reason (ECONNREFUSED, …) in `cause`. */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const code = (cause as { code?: unknown })?.code;
  if ((err as Error)?.name === "AbortError") return "aborted";
  return typeof code === "string" ? code : errorMessage(cause ?? err);
}

/** Every configured upstream; the dispatcher asks it for targets next to the registry's nodes. */
export class Upstreams {
  readonly targets: UpstreamTarget[];

  constructor(specs: UpstreamSpec[], log: Logger) {
    this.targets = specs.map((s) => new UpstreamTarget(s, log));
  }

  serves(model: string, embeddings = false): boolean {
    return this.targets.some((t) => t.serves(model, embeddings));
  }

  /**
   * The upstreams that may take a job: serving the model, not cooling down after a 429, admitted
   * by `only`/`ignore`. Free-tier jobs never go upstream (they move no sats, and an upstream bills).
   */
  candidates(
    model: string,
    prefs: RoutingPreferences = {},
    now = Date.now(),
    kind: { free?: boolean; embeddings?: boolean } = {},
  ): UpstreamTarget[] {
    if (kind.free) return [];
    const admitted = admits(prefs);
    return this.targets.filter(
      (t) => t.serves(model, kind.embeddings === true) && t.healthy(now) && admitted(t.nodeId),
    );
  }

  /** Models the upstreams serve, each counted once per upstream (a 429 pause does not unlist it). */
  models(embeddings = false): ModelOffer[] {
    const counts = new Map<string, number>();
    for (const t of this.targets) {
      for (const m of (embeddings ? t.spec.embeddings : t.spec.chat).keys()) {
        counts.set(m, (counts.get(m) ?? 0) + 1);
      }
    }
    return [...counts].map(([model, nodes]) => ({ model, nodes }));
  }

  close(): void {
    for (const t of this.targets) t.close();
  }
}

/** A job's targets, best first: the registry's nodes and the upstreams, ranked together. */
export function jobTargets(
  registry: Registry,
  upstreams: Upstreams | undefined,
  model: string,
  prefs: RoutingPreferences = {},
  now = Date.now(),
  kind: { free?: boolean; embeddings?: boolean } = {},
  /** nodes other gateway processes hold (cluster) */
  remote: readonly RemoteNode[] = [],
): (NodeSession | RemoteNode | UpstreamTarget)[] {
  if (!upstreams?.serves(model, kind.embeddings === true))
    return registry.candidates(model, prefs, now, kind, remote);
  const nodes = registry.candidates(model, { ...prefs, allowFallbacks: true }, now, kind, remote);
  return rankTargets<NodeSession | RemoteNode | UpstreamTarget>(
    [...nodes, ...upstreams.candidates(model, prefs, now, kind)],
    prefs,
  );
}

/** Node offers and upstream offers of the same model add up. */
export function mergeOffers(nodes: ModelOffer[], upstreams: ModelOffer[] | undefined): ModelOffer[] {
  if (!upstreams?.length) return nodes;
  const counts = new Map(nodes.map((o) => [o.model, o.nodes] as const));
  for (const o of upstreams) counts.set(o.model, (counts.get(o.model) ?? 0) + o.nodes);
  return [...counts]
    .map(([model, n]) => ({ model, nodes: n }))
    .sort((a, b) => a.model.localeCompare(b.model));
}
