/**
 * The dispatcher: a job's targets ranked (nodes here, nodes other processes hold, upstreams), tried
 * one after the other until one sends its first content byte (failover before the first byte), and
 * the bookkeeping when an attempt ends (load, disputes, failures, job counts, node stats).
 *
 * Job ids: every attempt gets a fresh random wire id. The buyer's job id is the hold id, which also
 * claims the buyer's change at /v1/cashu/change/:id, so it must never reach a node; and a fresh id per
 * attempt means a node that lost a job (timeout, failover) can neither pull its body nor feed chunks
 * into the attempt of the node that took over.
 */
import { randomUUID } from "node:crypto";
import { errorMessage } from "../../src/shared/index.js";
import { Attempt, type AttemptFailure, inlineBodyCheck } from "./attempt.js";
import type { RoutingContext } from "./context.js";
import { EMBEDDINGS_ENDPOINT, embeddingBounds, embeddingInputs, embeddingNodeBody } from "./embeddings.js";
import { nodeRequestBody } from "./node-body.js";
import { NodeSession } from "./registry.js";
import type { RemoteNode } from "./remote.js";
import {
  type Dispatcher,
  type DispatchRequest,
  type JobHandle,
  type JobOutcome,
  type ModelOffer,
  NoProviderError,
} from "./types.js";
import { promptBounds } from "./usage.js";
import {
  jobTargets,
  mergeOffers,
  type TargetAttemptOptions,
  type Upstreams,
  UpstreamTarget,
} from "./upstream.js";

/**
 * Time allowed per estimated prompt token before the first answer token, on top of
 * `firstByteTimeoutMs`: a long prompt (a Claude Code turn is ~12–48k tokens) must be read before
 * anything can stream, and a CPU node reads a few hundred tokens a second.
 */
export const PREFILL_MS_PER_TOKEN = 4;

/** How many finished buyer jobs remember their node, for `job_complete`. */
const JOB_MEMORY = 10_000;

export interface DispatchOptions {
  acceptTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  upstreams?: Upstreams;
  /** node ids this process holds (the cluster's counts leave them out) */
  localIds(): Set<string>;
  /** this process's offers plus the models nodes held by other processes serve */
  withRemote(offers: ModelOffer[], embeddings: boolean): ModelOffer[];
}

/** Where a buyer's job was served, for job_complete. */
export interface ServedJob {
  nodeId: string;
  wireId: string;
  remote?: RemoteNode;
}

export function createDispatcher(
  ctx: RoutingContext,
  opts: DispatchOptions,
): { dispatcher: Dispatcher; served: Map<string, ServedJob> } {
  const { log, store, registry, attempts } = ctx;
  const { acceptTimeoutMs, firstByteTimeoutMs, idleTimeoutMs, upstreams, localIds, withRemote } = opts;
  /** buyer job id → where it was served, for job_complete */
  const served = new Map<string, ServedJob>();

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
      ctx.state.cluster?.untrack(s, attempt.wireId);
    }
    if (ctx.state.closed) return;
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
    if (!ctx.state.cluster || !r.usable()) return undefined;
    const attempt: Attempt = new Attempt({
      ...spec,
      node: r,
      onEnd: (a, outcome, note) => onAttemptEnd(r, a, outcome, note),
    });
    ctx.state.cluster.track(r, attempt, spec.body);
    r.lastAssignedAt = Date.now();
    return attempt;
  };

  const dispatcher: Dispatcher = {
    async dispatch(req: DispatchRequest): Promise<JobHandle> {
      if (ctx.state.closed) throw new NoProviderError("the gateway is shutting down", "no_providers");
      const embeddings = req.kind === "embeddings";
      const only = { free: req.free, embeddings };
      const remote = ctx.state.cluster?.candidates(req.model, embeddings) ?? [];
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
      // Measured once for the job (lazily: only if a node takes the body in the offer).
      const bodyFitsInline = inlineBodyCheck(body);
      const reasons: string[] = [];
      let allRejected = true;
      for (const target of list) {
        if (req.signal.aborted || ctx.state.closed) break;
        const spec: TargetAttemptOptions = {
          wireId: randomUUID(),
          model: req.model,
          body,
          bodyFitsInline,
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
    nodesOnline: () => registry.online() + (ctx.state.cluster?.nodesOnline(localIds()) ?? 0),
  };

  return { dispatcher, served };
}
