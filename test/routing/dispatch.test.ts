/**
 * Dispatch over real WebSockets with scripted Owlrun nodes: routing by model, least-loaded choice,
 * failover before the first byte, cancel, max_tokens, the usage cross-check, preferences, failures
 * mid-stream and who may pull a job's body. Each test uses its own model names on a shared gateway.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NoProviderError } from "../../gateway/routing/index.js";
import { request, sleep, startGateway, type TestGateway, text, waitUntil } from "./harness.js";

let g: TestGateway;
beforeAll(async () => {
  g = await startGateway({ acceptTimeoutMs: 300, firstByteTimeoutMs: 800, idleTimeoutMs: 400 });
});
afterAll(async () => {
  await g.close();
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);

describe("routing by model and load", () => {
  it("two providers with different models: each job goes to the node that serves its model", async () => {
    const a = await g.agent({ models: ["alpha:1b"], reply: ["from", " a"] });
    const b = await g.agent({ models: ["beta:7b"], reply: ["from", " b"] });
    expect(g.routing.dispatcher.models()).toEqual(
      expect.arrayContaining([
        { model: "alpha:1b", nodes: 1 },
        { model: "beta:7b", nodes: 1 },
      ]),
    );
    const req = request("beta:7b");
    const jb = await g.routing.dispatcher.dispatch(req);
    expect(jb.nodeId).toBe(b.nodeId);
    expect(await text(jb)).toBe("from b");
    const o = await jb.outcome;
    expect(o).toMatchObject({
      status: "completed",
      nodeId: b.nodeId,
      countedCompletionTokens: 2,
      billableUsage: { completionTokens: 2 },
      reportedUsage: { completionTokens: 2 },
      usageDisputed: false,
    });
    // The node saw a fresh job id, never the buyer's (it claims the buyer's change), and a body
    // with streaming and usage forced on.
    expect(b.offered).toHaveLength(1);
    expect(b.offered[0]).not.toBe(req.jobId);
    expect(JSON.stringify(b.received)).not.toContain(req.jobId);
    expect(b.offers[0]).toEqual({
      type: "job",
      job_id: b.offered[0],
      model: "beta:7b",
      vram_required_mb: 0,
      buyer_region: "",
      free_tier: false,
    });
    expect(b.bodies[0]).toMatchObject({
      model: "beta:7b",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 100,
    });

    const ja = await g.routing.dispatcher.dispatch(request("alpha:1b"));
    expect([ja.nodeId, await text(ja)]).toEqual([a.nodeId, "from a"]);
    expect(b.offered).toHaveLength(1);
    await expect(g.routing.dispatcher.dispatch(request("gamma:70b"))).rejects.toMatchObject({
      name: "NoProviderError",
      reason: "no_providers",
    });
  });

  it("sends a job to the least-loaded node", async () => {
    const x = await g.agent({ models: ["load:1b"], reply: words(6), chunkDelayMs: 60 });
    const y = await g.agent({ models: ["load:1b"], reply: words(6), chunkDelayMs: 60 });
    const first = await g.routing.dispatcher.dispatch(request("load:1b"));
    const second = await g.routing.dispatcher.dispatch(request("load:1b"));
    expect(second.nodeId).not.toBe(first.nodeId);
    expect((await g.routing.node(first.nodeId))?.inflight).toBe(1);
    await text(first); // first's node is idle again, second's still busy
    await first.outcome;
    const third = await g.routing.dispatcher.dispatch(request("load:1b"));
    expect(third.nodeId).toBe(first.nodeId);
    await Promise.all([text(second), text(third)]);
    expect(x.offered.length + y.offered.length).toBe(3);
  });

  it("serves a completions prompt as one chat message", async () => {
    const n = await g.agent({ models: ["compl:1b"], reply: ["ok"] });
    const job = await g.routing.dispatcher.dispatch(
      request("compl:1b", { kind: "completions", body: { model: "compl:1b", prompt: "Once upon a time" } }),
    );
    expect(await text(job)).toBe("ok");
    expect(n.bodies[0]?.messages).toEqual([{ role: "user", content: "Once upon a time" }]);
  });
});

describe("failover before the first byte", () => {
  it("moves on from a node that rejects, one that never accepts, one killed after accepting and one that dies before its first token", async () => {
    const rejecting = await g.agent({ models: ["fo:1b"], rejectWith: "no_vram" });
    const silent = await g.agent({ models: ["fo:1b"], silent: true });
    const killed = await g.agent({ models: ["fo:1b"], job: { action: "die-after-accept" } });
    const dying = await g.agent({ models: ["fo:1b"], dieAfterChunks: 0 });
    const good = await g.agent({ models: ["fo:1b"], reply: ["made", " it"] });
    const order = [rejecting, silent, killed, dying, good].map((a) => a.nodeId);
    const job = await g.routing.dispatcher.dispatch(request("fo:1b", { preferences: { order } }));
    expect(job.nodeId).toBe(good.nodeId);
    expect(await text(job)).toBe("made it");
    expect((await job.outcome).status).toBe("completed");
    for (const a of [rejecting, silent, killed, dying]) expect(a.offered).toHaveLength(1);
    // Each attempt had its own job id.
    expect(new Set([rejecting, silent, killed, dying, good].map((a) => a.offered[0])).size).toBe(5);
    // The silent node was told to drop the job; its late accept is answered with cancel, its late
    // body pull is refused, and it is not disconnected for being slow.
    await silent.waitFor(() => silent.cancelled.includes(silent.offered[0]!), 1_000, "cancel");
    silent.sendJson({ type: "accept", job_id: silent.offered[0]! });
    await silent.waitFor(() => silent.cancelled.length === 2, 1_000, "second cancel");
    expect((await silent.pull(silent.offered[0]!)).status).toBe(404);
    expect(silent.connected()).toBe(true);
    expect([killed.connected(), dying.connected()]).toEqual([false, false]);
  });

  it("moves on from a node that finishes without any content (nothing billable was served)", async () => {
    const empty = await g.agent({ models: ["empty:1b"], job: { words: [] } });
    const full = await g.agent({ models: ["empty:1b"], reply: ["something"] });
    const job = await g.routing.dispatcher.dispatch(
      request("empty:1b", { preferences: { order: [empty.nodeId] } }),
    );
    expect([job.nodeId, await text(job)]).toEqual([full.nodeId, "something"]);
    expect(empty.offered).toHaveLength(1);
  });

  it("moves on when the first token does not come in time", async () => {
    const slow = await g.agent({ models: ["ttfb:1b"], job: { firstDelayMs: 2_000, words: ["late"] } });
    const fast = await g.agent({ models: ["ttfb:1b"], reply: ["fast"] });
    const t0 = Date.now();
    const job = await g.routing.dispatcher.dispatch(
      request("ttfb:1b", { preferences: { order: [slow.nodeId] } }),
    );
    expect(job.nodeId).toBe(fast.nodeId);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    expect(await text(job)).toBe("fast");
    expect(slow.cancelled).toEqual(slow.offered);
  });

  it("throws NoProviderError (nothing streamed: full refund) when nobody can take the job", async () => {
    await g.agent({ models: ["busy:1b"], rejectWith: "no_vram" });
    await g.agent({ models: ["busy:1b"], rejectWith: "model_not_loaded" });
    const err = await g.routing.dispatcher.dispatch(request("busy:1b")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoProviderError);
    expect(err).toMatchObject({ reason: "all_rejected", message: expect.stringMatching(/no_vram/) });
    await g.agent({ models: ["busy:1b"], silent: true });
    await expect(g.routing.dispatcher.dispatch(request("busy:1b"))).rejects.toMatchObject({
      reason: "all_failed",
    });
  });
});

describe("cancel and max_tokens", () => {
  it("propagates a buyer abort to the node as cancel and ends the job as cancelled", async () => {
    const n = await g.agent({ models: ["cancel:1b"], reply: words(40), chunkDelayMs: 15 });
    const abort = new AbortController();
    const job = await g.routing.dispatcher.dispatch(request("cancel:1b", { signal: abort.signal }));
    let got = 0;
    for await (const c of job.chunks) {
      if (c.choices?.[0]?.delta?.content && ++got === 3) abort.abort();
    }
    const o = await job.outcome;
    expect(o.status).toBe("cancelled");
    expect(o.countedCompletionTokens).toBeGreaterThanOrEqual(3);
    expect(o.countedCompletionTokens).toBeLessThan(8);
    expect(o.billableUsage.completionTokens).toBe(o.countedCompletionTokens);
    await n.waitFor(() => n.cancelled.length === 1, 1_000, "cancel");
    expect(n.cancelled).toEqual(n.offered);
    expect((await g.routing.node(n.nodeId))?.inflight).toBe(0);
  });

  it("an abort before the first token cancels the attempt and refunds (NoProviderError)", async () => {
    const n = await g.agent({ models: ["early:1b"], job: { firstDelayMs: 500 } });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    await expect(
      g.routing.dispatcher.dispatch(request("early:1b", { signal: abort.signal })),
    ).rejects.toBeInstanceOf(NoProviderError);
    await n.waitFor(() => n.cancelled.length === 1, 1_000, "cancel");
  });

  it("a consumer that stops reading cancels the job", async () => {
    const n = await g.agent({ models: ["stop:1b"], reply: words(30), chunkDelayMs: 10 });
    const job = await g.routing.dispatcher.dispatch(request("stop:1b"));
    for await (const _ of job.chunks) break;
    expect((await job.outcome).status).toBe("cancelled");
    await n.waitFor(() => n.cancelled.length === 1, 1_000, "cancel");
  });

  it("enforces max_tokens: relays that many, closes with finish_reason length and cancels the node", async () => {
    // An old node that ignores cancel keeps streaming: its late frames are dropped, not punished.
    const n = await g.agent({ models: ["cap:1b"], job: { words: words(20), obeyCancel: false } });
    const job = await g.routing.dispatcher.dispatch(request("cap:1b", { maxTokens: 5 }));
    const chunks = [];
    for await (const c of job.chunks) chunks.push(c);
    const content = chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("");
    expect(content).toBe("w0 w1 w2 w3 w4 ");
    expect(chunks.at(-1)?.choices?.[0]?.finish_reason).toBe("length");
    const o = await job.outcome;
    expect(o).toMatchObject({
      status: "completed",
      countedCompletionTokens: 5,
      billableUsage: { completionTokens: 5 },
    });
    await n.waitFor(() => n.cancelled.length === 1, 1_000, "cancel");
    await sleep(100);
    expect(n.connected()).toBe(true);
    const again = await g.routing.dispatcher.dispatch(request("cap:1b", { maxTokens: 50 }));
    expect(await text(again)).toBe(words(20).join(""));
  });
});

describe("usage cross-check", () => {
  it("bills an inflating node by the gateway's count and records the dispute", async () => {
    const greedy = await g.agent({
      models: ["greedy:1b"],
      reply: ["a", "b", "c"],
      reportCompletionTokens: 900,
    });
    const job = await g.routing.dispatcher.dispatch(request("greedy:1b"));
    await text(job);
    const o = await job.outcome;
    expect(o).toMatchObject({
      reportedUsage: { completionTokens: 900 },
      countedCompletionTokens: 3,
      billableUsage: { completionTokens: 3 },
      usageDisputed: true,
    });
    expect((await g.routing.node(greedy.nodeId))?.disputes).toBe(1);
    expect(await g.routing.disputes()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ nodeId: greedy.nodeId, count: 1, lastNote: expect.stringMatching(/900/) }),
      ]),
    );
  });

  it("believes a report within tolerance, clamped to max_tokens, and caps an inflated prompt", async () => {
    const n = await g.agent({
      models: ["honest:1b"],
      job: { words: words(8), usage: (w) => ({ prompt_tokens: 12, completion_tokens: w + 2 }) },
    });
    const job = await g.routing.dispatcher.dispatch(request("honest:1b", { maxTokens: 9 }));
    await text(job);
    expect(await job.outcome).toMatchObject({
      countedCompletionTokens: 8,
      billableUsage: { promptTokens: 12, completionTokens: 9 },
      usageDisputed: false,
    });
    expect((await g.routing.node(n.nodeId))?.disputes).toBe(0);

    const padder = await g.agent({
      models: ["padder:1b"],
      job: { words: words(2), usage: () => ({ prompt_tokens: 50_000, completion_tokens: 2 }) },
    });
    const p = await g.routing.dispatcher.dispatch(request("padder:1b"));
    await text(p);
    const po = await p.outcome;
    expect(po.billableUsage.promptTokens).toBeLessThan(100);
    expect(po.usageDisputed).toBe(true);
    expect((await g.routing.node(padder.nodeId))?.disputes).toBe(1);
  });
});

describe("preferences", () => {
  it("only, ignore, order and allowFallbacks=false", async () => {
    const bad = await g.agent({ models: ["pref:1b"], rejectWith: "busy" });
    const good = await g.agent({ models: ["pref:1b"], reply: ["x"] });
    const third = await g.agent({ models: ["pref:1b"], reply: ["y"] });
    const d = g.routing.dispatcher;

    await expect(
      d.dispatch(request("pref:1b", { preferences: { order: [bad.nodeId], allowFallbacks: false } })),
    ).rejects.toMatchObject({ reason: "all_rejected" });
    expect([good.offered.length, third.offered.length]).toEqual([0, 0]);

    const only = await d.dispatch(request("pref:1b", { preferences: { only: [third.nodeId] } }));
    expect([only.nodeId, await text(only)]).toEqual([third.nodeId, "y"]);

    const ignored = await d.dispatch(
      request("pref:1b", { preferences: { ignore: [third.nodeId], order: [bad.nodeId, good.nodeId] } }),
    );
    expect([ignored.nodeId, await text(ignored)]).toEqual([good.nodeId, "x"]);
    expect(bad.offered).toHaveLength(2);

    await expect(d.dispatch(request("pref:1b", { preferences: { only: ["nobody"] } }))).rejects.toMatchObject(
      { reason: "no_providers", message: expect.stringMatching(/preferences/) },
    );
    await expect(
      d.dispatch(request("pref:1b", { preferences: { only: [good.nodeId], ignore: [good.nodeId] } })),
    ).rejects.toMatchObject({ reason: "no_providers" });
  });
});

describe("failures mid-stream", () => {
  it("a node killed mid-stream ends the job as failed with what was delivered", async () => {
    await g.agent({
      models: ["die:1b"],
      job: { words: ["one", " two", " three", " four"], dieAfterWords: 2 },
    });
    const job = await g.routing.dispatcher.dispatch(request("die:1b"));
    expect(await text(job)).toBe("one two");
    const o = await job.outcome;
    expect(o).toMatchObject({
      status: "failed",
      countedCompletionTokens: 2,
      billableUsage: { completionTokens: 2 },
    });
    expect(o.error).toMatch(/disconnected/);
  });

  it("garbage in the stream fails the job; the node is told to stop but stays connected", async () => {
    const n = await g.agent({ models: ["garbage:1b"], job: { words: words(5), garbageAfterWords: 2 } });
    const job = await g.routing.dispatcher.dispatch(request("garbage:1b"));
    expect(await text(job)).toBe("w0 w1 ");
    expect(await job.outcome).toMatchObject({ status: "failed", billableUsage: { completionTokens: 2 } });
    await n.waitFor(() => n.cancelled.length === 1, 1_000, "cancel");
    expect(n.connected()).toBe(true);
  });

  it("a stream that stalls fails after the idle timeout", async () => {
    await g.agent({ models: ["stall:1b"], job: { words: words(5), stallAfterWords: 2 } });
    const job = await g.routing.dispatcher.dispatch(request("stall:1b"));
    expect(await text(job)).toBe("w0 w1 ");
    expect(await job.outcome).toMatchObject({ status: "failed", error: expect.stringMatching(/stalled/) });
  });
});

describe("job bodies", () => {
  it("only the assigned node may pull a job's body, and only while the job waits", async () => {
    const owner = await g.agent({ models: ["pull:1b"], reply: words(5), chunkDelayMs: 80 });
    const other = await g.agent({ models: ["other:1b"] });
    const job = await g.routing.dispatcher.dispatch(request("pull:1b"));
    const id = owner.offered[0]!;
    expect((await owner.pull(id)).status).toBe(200);
    const stolen = await other.pull(id);
    expect(stolen).toEqual({
      status: 403,
      body: { error: { message: expect.any(String), type: "forbidden", code: 403 } },
    });
    expect((await other.pull("no-such-job")).status).toBe(404);
    expect((await owner.pull(id, "owlr_prov_forged")).status).toBe(401);
    const anonymous = await fetch(`${g.url}/v1/gateway/jobs/${id}/proxy/request`);
    expect(anonymous.status).toBe(401);
    await text(job);
    await waitUntil(async () => (await g.routing.node(owner.nodeId))?.inflight === 0);
    expect((await owner.pull(id)).status).toBe(404);
    expect(other.connected()).toBe(true);
  });
});
