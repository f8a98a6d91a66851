/**
 * The gateway side of the Owlrun node protocol, driven by scripted agents that speak it byte for
 * byte: routing by model, least-loaded choice, failover before the first byte, cancel, max_tokens
 * and usage cross-checks, preferences, replaced connections, heartbeat timeouts, body-pull
 * permissions and rogue nodes.
 */
import { createServer, type Server } from "node:http";
import express from "express";
import { afterEach, describe, expect, it } from "vitest";
import { createRouting, type Routing } from "../../gateway/routing/index.js";
import type { DispatchRequest, JobHandle } from "../../gateway/routing/types.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { type AgentScript, startAgent } from "../support/owlrun-agent.js";
import { tempDir } from "../support/cli-process.js";

interface Harness {
  url: string;
  routing: Routing;
  server: Server;
  dir: string;
  close(): Promise<void>;
}
const open: Harness[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
  for (const h of open.splice(0)) await h.close();
});

async function harness(
  dir = tempDir(),
  opts: Partial<Parameters<typeof createRouting>[0]> = {},
  port = 0,
): Promise<Harness> {
  const routing = createRouting({
    dataDir: dir,
    log: silentLogger,
    acceptTimeoutMs: 300,
    firstByteTimeoutMs: 1500,
    ...opts,
  });
  const app = express();
  app.use(express.json());
  app.use(routing.router);
  const server = createServer(app);
  const detach = routing.attachWebSocket(server);
  const url = await listen(server, "127.0.0.1", port);
  const h = {
    url,
    routing,
    server,
    dir,
    close: async () => {
      detach();
      await closeServer(server);
      await routing.close();
    },
  };
  open.push(h);
  return h;
}

async function agent(h: Harness, script: AgentScript, opts?: { apiKey?: string; nodeId?: string }) {
  const a = await startAgent(h.url, script, opts);
  cleanups.push(() => a.close());
  for (
    let i = 0;
    i < 50 && !h.routing.dispatcher.models().some((m) => script.models.includes(m.model));
    i++
  ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return a;
}

function req(model: string, extra: Partial<DispatchRequest> = {}): DispatchRequest {
  return {
    jobId: "j",
    model,
    kind: "chat",
    body: { model, messages: [{ role: "user", content: "hello" }] },
    maxTokens: 100,
    signal: new AbortController().signal,
    ...extra,
  };
}

async function text(job: JobHandle): Promise<string> {
  let out = "";
  for await (const c of job.chunks) out += c.choices?.map((x) => x.delta?.content ?? "").join("") ?? "";
  return out;
}

describe("routing", () => {
  it("routes by model to the node that serves it, and refuses models nobody serves", async () => {
    const h = await harness();
    const a = await agent(h, { models: ["m-a"], reply: ["from", " a"] });
    const b = await agent(h, { models: ["m-b"], reply: ["from", " b"] });
    expect(h.routing.dispatcher.models().map((m) => m.model)).toEqual(["m-a", "m-b"]);
    expect(h.routing.dispatcher.nodesOnline()).toBe(2);
    const ja = await h.routing.dispatcher.dispatch(req("m-a"));
    expect([ja.nodeId, await text(ja)]).toEqual([a.nodeId, "from a"]);
    const jb = await h.routing.dispatcher.dispatch(req("m-b"));
    expect([jb.nodeId, await text(jb)]).toEqual([b.nodeId, "from b"]);
    const o = await jb.outcome;
    expect(o.status).toBe("completed");
    expect(o.billableUsage.completionTokens).toBe(2);
    // The node saw the body with stream forced on and the cap applied.
    expect(b.bodies[0]).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 100,
    });
    await expect(h.routing.dispatcher.dispatch(req("m-none"))).rejects.toMatchObject({
      reason: "no_providers",
    });
  });

  it("fails over before the first byte: a rejecting, a silent and a dying node, then a good one", async () => {
    const h = await harness();
    const rejecting = await agent(h, { models: ["m"], rejectWith: "no_vram" });
    const silent = await agent(h, { models: ["m"], silent: true });
    const dying = await agent(h, { models: ["m"], dieAfterChunks: 0 });
    const good = await agent(h, { models: ["m"], reply: ["o", "k"], chunkDelayMs: 100 });
    const job = await h.routing.dispatcher.dispatch(
      req("m", { preferences: { order: [rejecting.nodeId, silent.nodeId, dying.nodeId, good.nodeId] } }),
    );
    expect(job.nodeId).toBe(good.nodeId);
    // While the job runs, a node that was not assigned cannot pull its body.
    const stolen = await fetch(`${h.url}/v1/gateway/jobs/${good.offered[0]}/proxy/request`, {
      headers: { authorization: `Bearer ${rejecting.apiKey}` },
    });
    expect(stolen.status).toBe(403);
    expect(await text(job)).toBe("ok");
    for (const n of [rejecting, silent, dying]) expect(n.offered).toHaveLength(1);
  });

  it("with allow_fallbacks=false only the first choice is tried; only/ignore filter nodes", async () => {
    const h = await harness();
    const bad = await agent(h, { models: ["m"], rejectWith: "busy" });
    const good = await agent(h, { models: ["m"], reply: ["x"] });
    await expect(
      h.routing.dispatcher.dispatch(
        req("m", { preferences: { order: [bad.nodeId], allowFallbacks: false } }),
      ),
    ).rejects.toMatchObject({ reason: "all_rejected" });
    expect(good.offered).toHaveLength(0);
    await expect(
      h.routing.dispatcher.dispatch(
        req("m", { preferences: { ignore: [good.nodeId], only: [bad.nodeId, good.nodeId] } }),
      ),
    ).rejects.toMatchObject({ reason: "all_rejected" });
    expect(good.offered).toHaveLength(0);
    const j2 = await h.routing.dispatcher.dispatch(req("m", { preferences: { only: [good.nodeId] } }));
    expect(j2.nodeId).toBe(good.nodeId);
    await text(j2);
  });

  it("prefers the least-loaded node", async () => {
    const h = await harness();
    const slow = await agent(h, { models: ["m"], reply: ["a", "b", "c", "d"], chunkDelayMs: 100 });
    const other = await agent(h, { models: ["m"], reply: ["z"] });
    const first = await h.routing.dispatcher.dispatch(req("m", { preferences: { order: [slow.nodeId] } }));
    expect(first.nodeId).toBe(slow.nodeId);
    const second = await h.routing.dispatcher.dispatch(req("m"));
    expect(second.nodeId).toBe(other.nodeId);
    await Promise.all([text(first), text(second)]);
  });

  it("cancel: when the buyer goes away the node is told and the job ends as cancelled", async () => {
    const h = await harness();
    const a = await agent(h, {
      models: ["m"],
      reply: Array.from({ length: 50 }, (_, i) => `w${i} `),
      chunkDelayMs: 20,
    });
    const abort = new AbortController();
    const job = await h.routing.dispatcher.dispatch(req("m", { signal: abort.signal }));
    let got = 0;
    for await (const _ of job.chunks) {
      if (++got === 3) abort.abort();
    }
    const o = await job.outcome;
    expect(o.status).toBe("cancelled");
    expect(o.billableUsage.completionTokens).toBeLessThan(10);
    await new Promise((r) => setTimeout(r, 50));
    expect(a.cancelled).toEqual([a.offered[0]]);
  });

  it("enforces max_tokens and does not trust an inflated usage report", async () => {
    const h = await harness();
    const greedy = await agent(h, { models: ["m"], reply: ["a", "b", "c"], reportCompletionTokens: 900 });
    const job = await h.routing.dispatcher.dispatch(req("m"));
    await text(job);
    const o = await job.outcome;
    expect(o.reportedUsage?.completionTokens).toBe(900);
    expect(o.countedCompletionTokens).toBe(3);
    expect(o.billableUsage.completionTokens).toBe(3);
    expect(o.usageDisputed).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(h.routing.store.disputes(greedy.nodeId)).toBe(1);

    const long = await agent(h, { models: ["long"], reply: Array.from({ length: 20 }, () => "t") });
    const capped = await h.routing.dispatcher.dispatch(req("long", { maxTokens: 5 }));
    expect(await text(capped)).toBe("ttttt");
    expect((await capped.outcome).billableUsage.completionTokens).toBe(5);
    await new Promise((r) => setTimeout(r, 50));
    expect(long.cancelled).toHaveLength(1);
  });

  it("a failure mid-stream ends the job as failed with what was delivered", async () => {
    const h = await harness();
    await agent(h, { models: ["m"], reply: ["one", " two", " three", " four"], dieAfterChunks: 2 });
    const job = await h.routing.dispatcher.dispatch(req("m"));
    expect(await text(job)).toBe("one two");
    const o = await job.outcome;
    expect(o.status).toBe("failed");
    expect(o.billableUsage.completionTokens).toBe(2);
  });

  it("a rogue node is disconnected without disturbing another node's job", async () => {
    const h = await harness();
    const good = await agent(h, { models: ["m"], reply: ["a", "b", "c", "d"], chunkDelayMs: 30 });
    const rogue = await agent(h, { models: ["r"] });
    const job = await h.routing.dispatcher.dispatch(req("m"));
    rogue.send("{not json");
    await new Promise((r) => setTimeout(r, 100));
    expect(rogue.connected()).toBe(false);
    expect(await text(job)).toBe("abcd");
    expect(good.connected()).toBe(true);
    // Chunks for a job it does not hold, oversized frames, binary: also disconnected.
    const r2 = await agent(h, { models: ["r2"] });
    r2.send(JSON.stringify({ type: "proxy_chunk", job_id: "not-yours", data: "x" }));
    const r3 = await agent(h, { models: ["r3"] });
    r3.send(JSON.stringify({ type: "heartbeat", pad: "x".repeat(70 * 1024) }));
    await new Promise((r) => setTimeout(r, 100));
    expect([r2.connected(), r3.connected()]).toEqual([false, false]);
    // Unknown message types are ignored (forward compatibility).
    const polite = await agent(h, { models: ["p"] });
    polite.send(JSON.stringify({ type: "future_feature", x: 1 }));
    await new Promise((r) => setTimeout(r, 50));
    expect(polite.connected()).toBe(true);
  });

  it("keys: signup can be closed; unknown keys cannot register or connect; a node id belongs to its key", async () => {
    const h = await harness(tempDir(), { signupOpen: false });
    expect((await fetch(`${h.url}/v1/gateway/signup`, { method: "POST" })).status).toBe(403);
    const key = h.routing.store.createKey();
    const a = await agent(h, { models: ["m"] }, { apiKey: key, nodeId: "node-1" });
    expect(a.connected()).toBe(true);
    const other = h.routing.store.createKey();
    await expect(startAgent(h.url, { models: ["m"] }, { apiKey: other, nodeId: "node-1" })).rejects.toThrow(
      /403/,
    );
    await expect(startAgent(h.url, { models: ["m"] }, { apiKey: "owlr_prov_unknown" })).rejects.toThrow(
      /401/,
    );
    const ws = await fetch(`${h.url}/v1/gateway/ws?api_key=owlr_prov_unknown`, {
      headers: { connection: "upgrade", upgrade: "websocket" },
    }).catch(() => undefined);
    expect(ws?.status ?? 403).toBe(403);
  });

  it("a newer connection of the same node replaces the older; silent nodes are dropped", async () => {
    const h = await harness(tempDir(), { heartbeatTimeoutMs: 300, pingIntervalMs: 100 });
    const key = h.routing.store.createKey();
    const first = await agent(h, { models: ["m"] }, { apiKey: key, nodeId: "n" });
    const second = await agent(h, { models: ["m"] }, { apiKey: key, nodeId: "n" });
    await new Promise((r) => setTimeout(r, 50));
    expect(first.connected()).toBe(false);
    expect(second.connected()).toBe(true);
    expect(h.routing.dispatcher.nodesOnline()).toBe(1);
    // The scripted agent answers pings, so it stays; a raw socket that never speaks is dropped.
    const { WebSocket } = await import("ws");
    const mute = h.routing.store.createKey();
    await startAgent(h.url, { models: ["q"] }, { apiKey: mute, nodeId: "mute" }).then((a) => a.close());
    const raw = new WebSocket(`${h.url.replace("http", "ws")}/v1/gateway/ws?api_key=${mute}`);
    raw.on("message", () => undefined);
    await new Promise((r) => raw.once("open", r));
    // It never sends a message (no heartbeat, no pong): dropped after the timeout.
    await new Promise((r) => setTimeout(r, 800));
    expect(raw.readyState).toBe(WebSocket.CLOSED);
    expect(second.connected()).toBe(true);
  });

  it("a node reconnects after the gateway restarts on the same data dir: its key still works", async () => {
    const dir = tempDir();
    const h1 = await harness(dir);
    const key = h1.routing.store.createKey();
    await agent(h1, { models: ["m"] }, { apiKey: key, nodeId: "survivor" });
    const port = Number(new URL(h1.url).port);
    await h1.close();
    open.splice(open.indexOf(h1), 1);
    // Real agents reconnect with backoff (≥ 1 s); give the client's pooled sockets a moment to see the close.
    await new Promise((r) => setTimeout(r, 200));
    const h2 = await harness(dir, {}, port);
    const again = await agent(h2, { models: ["m"], reply: ["back"] }, { apiKey: key, nodeId: "survivor" });
    const job = await h2.routing.dispatcher.dispatch(req("m"));
    expect([job.nodeId, await text(job)]).toEqual([again.nodeId, "back"]);
  });
});
