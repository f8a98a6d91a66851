/**
 * The provider node against the scripted gateway (test/support/fake-gateway.ts) over a real
 * WebSocket on loopback, serving from the embedded backend with the generated test models:
 * registration, heartbeats, jobs streamed with usage, rejects, max_tokens, cancel, drain, reconnect
 * after the gateway restarts, and garbage from the gateway.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  type ChatChunk,
  createEmbeddedBackend,
  ensureTestModels,
  type NodeOptions,
  ProviderNode,
  RANDOM_MODEL_ID,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
  summarize,
} from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { type FakeGateway, startFakeGateway } from "../support/fake-gateway.js";

const KEY = "owlr_prov_test_key";
const chat = (content: string, extra: Record<string, unknown> = {}) => ({
  messages: [{ role: "user", content }],
  ...extra,
});

let backend: Backend;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  backend = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
}, 60_000);
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(async () => {
  await backend?.close();
});

async function setup(overrides: Partial<NodeOptions> = {}, fakeOpts = {}) {
  const fake = await startFakeGateway({ keys: [KEY], ...fakeOpts });
  const status: string[] = [];
  const node = new ProviderNode({
    gateway: fake.url,
    apiKey: KEY,
    nodeId: "node-test-1",
    backend,
    version: "owlrun-mcp/test",
    heartbeatMs: 200,
    minBackoffMs: 50,
    maxBackoffMs: 400,
    onStatus: (l) => status.push(l),
    log: silentLogger,
    ...overrides,
  });
  cleanup.push(
    () => node.close(),
    () => fake.close(),
  );
  return { fake, node, status };
}

const proxyChunks = (fake: FakeGateway, jobId: string) =>
  fake.received.filter((f) => f.type === "proxy_chunk" && f.job_id === jobId);

describe("registration and the session", () => {
  it("registers with its models and the Owlrun fields, heartbeats, answers pings, reads heartbeat_ack", async () => {
    const { fake, node } = await setup({ lightningAddress: "op@example.com", heartbeatMs: 100 });
    fake.ack.earned_today_sats = 21;
    fake.ack.earned_total_sats = 1234;
    fake.ack.balance_sats = 234;
    fake.ack.withdraw_history = [
      { amount_sats: 400_000, payment_hash: "aa11", timestamp: 1_700_000_000 },
      { amount_sats: 1_000_000, payment_hash: "bb22", timestamp: 1_700_100_000 },
    ];
    await node.start();
    expect(node.connected).toBe(true);
    expect(fake.registrations).toHaveLength(1);
    const reg = fake.registrations[0]!;
    expect(reg.authorization).toBe(`Bearer ${KEY}`);
    expect(reg.body).toEqual({
      node_id: "node-test-1",
      api_key: KEY,
      gpu: "cpu",
      gpu_vendor: "none",
      vram_total_mb: 0,
      vram_free_mb: 0,
      vram_exact: false,
      models: [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
      // our extension: the embedded backend embeds with every model it loads
      embedding_models: [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
      inline_job_body: true,
      ollama_url: "",
      region: "",
      lightning_address: "op@example.com",
      version: "owlrun-mcp/test",
    });
    const hb = await fake.waitFor((m) => m.type === "heartbeat");
    expect(hb).toEqual({
      type: "heartbeat",
      gpu_util_pct: 0,
      vram_free_mb: 0,
      temp_c: 0,
      power_w: 0,
      queue_depth: 0,
      earning_state: "idle",
    });
    await fake.until(() => node.stats.earnedTotalSats === 1234);
    expect(node.stats).toMatchObject({ earnedTodaySats: 21, balanceSats: 234 });
    // withdraw_history carries millisats in amount_sats (as Owlrun agents read it); newest wins
    expect(node.stats.lastPayout).toEqual({
      sats: 1000,
      paymentHash: "bb22",
      at: new Date(1_700_100_000_000).toISOString(),
    });
    expect(summarize(node.stats)).toMatch(
      /^served 0 jobs, 0 tokens, rejected 0, failed 0; earned 1234 sats \(today 21, balance 234\); last payout: 1000 sats at 2023-/,
    );
    fake.send({ type: "ping" });
    await fake.waitFor((m) => m.type === "pong");
    // several heartbeats at the configured period, on one connection
    await fake.until(() => fake.received.filter((m) => m.type === "heartbeat").length >= 3);
    expect(fake.connections).toBe(1);
  });

  it("fails to start with the gateway's own message when it refuses the key", async () => {
    const { node } = await setup({ apiKey: "owlr_prov_unknown" });
    await expect(node.start()).rejects.toThrow(/HTTP 401.*unknown provider key/);
  });
});

describe("jobs", () => {
  it("accepts within 2 s, pulls the body with its key, streams OpenAI SSE with usage, then proxy_done", async () => {
    const seen: Record<string, unknown>[] = [];
    const spy: Backend = {
      ...backend,
      listModels: () => backend.listModels(),
      chat: (body, signal) => {
        seen.push(body);
        return backend.chat(body, signal);
      },
    };
    const { fake, node, status } = await setup({ backend: spy });
    await node.start();
    const job = fake.offer(SCRIPTED_MODEL_ID, chat("Say hello", { stream: false }));
    expect(await job.answered).toEqual({ type: "accept", job_id: job.id });
    const r = await job.result;
    expect(r.answerMs).toBeLessThan(2000);
    expect(r.status).toBe("done");
    expect(r.error).toBeUndefined();
    expect(r.text).toBe(SCRIPTED_ANSWER);
    expect(r.sawDone).toBe(true);
    expect(r.sse.endsWith("data: [DONE]\n\n")).toBe(true);
    expect(r.finishReason).toBe("stop");
    // the body pull, authenticated with the node's key
    expect(fake.pulls).toEqual([{ jobId: job.id, authorization: `Bearer ${KEY}`, status: 200 }]);
    // the node forces streaming with usage and a max_tokens
    expect(seen[0]).toMatchObject({
      model: SCRIPTED_MODEL_ID,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 32_768,
    });
    // OpenAI chunk format: role first, content, finish, then a usage chunk with no choices
    const chunks = r.chunks as ChatChunk[];
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === SCRIPTED_MODEL_ID)).toBe(
      true,
    );
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: "assistant", content: "" });
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage!.completion_tokens).toBe(6);
    expect(last.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(last.usage!.total_tokens).toBe(last.usage!.prompt_tokens + 6);
    // frames: accept, chunks ≤ 4 KiB, proxy_done last
    expect(r.frames[0]).toEqual({ type: "accept", job_id: job.id });
    expect(r.frames.at(-1)).toEqual({ type: "proxy_done", job_id: job.id });
    for (const f of proxyChunks(fake, job.id)) {
      expect(Buffer.byteLength(String(f.data))).toBeLessThanOrEqual(4096);
    }
    await fake.until(() => node.stats.earnedUsd > 0); // job_complete read
    expect(node.stats).toMatchObject({ jobs: 1, tokens: 6, rejected: 0, failed: 0 });
    expect(status).toHaveLength(1);
    expect(status[0]).toMatch(
      new RegExp(`^job ${job.id.slice(0, 8)} ${SCRIPTED_MODEL_ID.replace(".", "\\.")} 6 tokens in \\d+ ms`),
    );
  });

  it("serves legacy completions (prompt) as text_completion chunks", async () => {
    const { fake, node } = await setup();
    await node.start();
    const r = await fake.offer(SCRIPTED_MODEL_ID, { prompt: "Once upon a time", max_tokens: 50 }).result;
    expect(r.chunks.every((c) => c.object === "text_completion")).toBe(true);
    expect(r.text.trim()).toBe(SCRIPTED_ANSWER);
    // "Once upon a time": BOS + one token per character (the test vocabulary has no merges)
    expect(r.usage).toEqual({ prompt_tokens: 17, completion_tokens: 6, total_tokens: 23 });
    expect(r.sawDone).toBe(true);
  });

  it("rejects at once a model it does not serve, and jobs beyond its capacity", async () => {
    const { fake, node, status } = await setup({ maxJobs: 1 });
    await node.start();
    const unknown = fake.offer("llama3.1:8b", chat("hi"));
    const r = await unknown.result;
    expect(r.status).toBe("rejected");
    expect(r.frames).toEqual([{ type: "reject", job_id: unknown.id, reason: "model_not_loaded" }]);
    expect(r.answerMs).toBeLessThan(500);
    expect(fake.pulls).toHaveLength(0);
    expect(status[0]).toMatch(/rejected: model_not_loaded$/);

    const long = fake.offer(RANDOM_MODEL_ID, chat("go on", { max_tokens: 300 }));
    await long.answered;
    const busy = await fake.offer(SCRIPTED_MODEL_ID, chat("hi")).result;
    expect(busy.reason).toBe("busy");
    expect((await long.result).status).toBe("done");
    expect(node.stats.rejected).toBe(2);
  });

  it("serves an embedding job as one JSON answer, and rejects endpoints it does not know", async () => {
    const { fake, node } = await setup();
    await node.start();
    const job = fake.offer(SCRIPTED_MODEL_ID, { input: ["Hello", "owlrun"] }, { endpoint: "/v1/embeddings" });
    const r = await job.result;
    expect(r.frames.at(-1)).toEqual({ type: "proxy_done", job_id: job.id });
    const answer = JSON.parse(r.sse) as {
      data: { index: number; embedding: number[] }[];
      usage: { prompt_tokens: number };
    };
    expect(answer.data.map((d) => [d.index, d.embedding.length])).toEqual([
      [0, 64],
      [1, 64],
    ]);
    expect(answer.usage.prompt_tokens).toBeGreaterThan(0);
    const odd = await fake.offer(SCRIPTED_MODEL_ID, { input: "x" }, { endpoint: "/v1/audio/speech" }).result;
    expect(odd.status).toBe("rejected");
    expect(odd.reason).toBe("unsupported_endpoint");
  });

  it("honours max_tokens, and cuts a backend that ignores it", async () => {
    const { fake, node } = await setup();
    await node.start();
    const r = await fake.offer(SCRIPTED_MODEL_ID, chat("hi", { max_tokens: 2 })).result;
    expect(r.text).toBe("Hello from");
    expect(r.finishReason).toBe("length");
    expect(r.usage?.completion_tokens).toBe(2);
    const r2 = await fake.offer(SCRIPTED_MODEL_ID, chat("hi", { max_completion_tokens: 3 })).result;
    expect(r2.text).toBe("Hello from the");

    // A backend that streams 50 pieces whatever max_tokens says.
    async function* endless(model: string): AsyncGenerator<ChatChunk> {
      const base = { id: "x", object: "chat.completion.chunk" as const, created: 1, model };
      for (let i = 0; i < 50; i++) {
        yield { ...base, choices: [{ index: 0, delta: { content: `w${i} ` }, finish_reason: null }] };
      }
      yield { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] };
      yield {
        ...base,
        choices: [],
        usage: { prompt_tokens: 3, completion_tokens: 50, total_tokens: 53 },
      };
    }
    const rogue: Backend = {
      name: "rogue",
      listModels: async () => ["rogue:1b"],
      chat: (body) => endless(String(body.model)),
      complete: () => {
        throw new Error("no");
      },
      close: async () => undefined,
    };
    const other = await setup({ backend: rogue });
    await other.node.start();
    const cut = await other.fake.offer("rogue:1b", chat("hi", { max_tokens: 5 })).result;
    expect(cut.text).toBe("w0 w1 w2 w3 w4 ");
    expect(cut.finishReason).toBe("length");
    expect(cut.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    expect(cut.sawDone).toBe(true);
  });

  it("serves concurrent jobs", async () => {
    const { fake, node } = await setup();
    await node.start();
    const jobs = [1, 2, 3].map((i) => fake.offer(SCRIPTED_MODEL_ID, chat(`question ${i}`)));
    const results = await Promise.all(jobs.map((j) => j.result));
    expect(results.map((r) => r.text)).toEqual([SCRIPTED_ANSWER, SCRIPTED_ANSWER, SCRIPTED_ANSWER]);
    expect(node.stats.jobs).toBe(3);
  });

  it("cancel stops generation; the node keeps serving", async () => {
    const { fake, node, status } = await setup();
    await node.start();
    const job = fake.offer(RANDOM_MODEL_ID, chat("tell me everything", { max_tokens: 900 }));
    await fake.until(() => proxyChunks(fake, job.id).length >= 4);
    job.cancel();
    const r = await job.result;
    expect(r.error).toBeUndefined();
    expect(r.sawDone).toBe(false);
    expect(proxyChunks(fake, job.id).length).toBeLessThan(300);
    expect(node.stats.cancelled).toBe(1);
    expect(status[0]).toMatch(/stopped: cancelled by the gateway$/);
    expect((await fake.offer(SCRIPTED_MODEL_ID, chat("again")).result).text).toBe(SCRIPTED_ANSWER);
  });

  it("shutting down ends jobs in flight with an error and closes the socket", async () => {
    const { fake, node } = await setup();
    await node.start();
    const job = fake.offer(RANDOM_MODEL_ID, chat("long", { max_tokens: 900 }));
    await fake.until(() => proxyChunks(fake, job.id).length >= 2);
    await node.close();
    expect((await job.result).error).toBe("node shutting down");
    await fake.until(() => !fake.connected);
    expect(node.connected).toBe(false);
  });

  it("a failed body pull ends the job with an error, not the node", async () => {
    const { fake, node } = await setup();
    await node.start();
    const r = await fake.offer(SCRIPTED_MODEL_ID, null).result;
    expect(r.error).toMatch(/HTTP 404.*no such job/);
    expect(node.stats.failed).toBe(1);
    expect((await fake.offer(SCRIPTED_MODEL_ID, chat("hi")).result).text).toBe(SCRIPTED_ANSWER);
  });

  it("drain: takes no new jobs (reason draining) and says so in heartbeats", async () => {
    const { fake, node } = await setup({ heartbeatMs: 100 });
    await node.start();
    fake.drain();
    await fake.until(() => node.isDraining);
    const r = await fake.offer(SCRIPTED_MODEL_ID, chat("hi")).result;
    expect(r.frames).toEqual([{ type: "reject", job_id: r.frames[0]!.job_id, reason: "draining" }]);
    await fake.waitFor((m) => m.type === "heartbeat" && m.earning_state === "draining");
  });
});

describe("resilience", () => {
  it("reconnects with backoff after the gateway restarts, registering again first", async () => {
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const { fake, node } = await setup({ log });
    await node.start();
    // a job in flight when the gateway dies is stopped
    const doomed = fake.offer(RANDOM_MODEL_ID, chat("long", { max_tokens: 900 }));
    await fake.until(() => proxyChunks(fake, doomed.id).length >= 2);
    await fake.stop();
    await fake.until(() => !node.connected);
    await new Promise((r) => setTimeout(r, 600)); // a few refused attempts, backing off
    expect(fake.registrations).toHaveLength(1);
    // backing off: each wait within [step/2, step], the step doubling from 50 ms up to 400 ms
    const waits = warnings.flatMap((w) => /reconnecting in ([\d.]+) s/.exec(w)?.[1] ?? []).map(Number);
    expect(waits.length).toBeGreaterThanOrEqual(3);
    waits.forEach((w, i) => {
      const step = Math.min(0.4, 0.05 * 2 ** i);
      expect(w).toBeGreaterThanOrEqual(Math.floor((step / 2) * 10) / 10);
      expect(w).toBeLessThanOrEqual(step + 0.05);
    });
    await fake.start(); // same port
    // Both ends: the gateway sees the socket before the node's open handler has run.
    await fake.until(() => fake.connected && node.connected, 5000);
    expect(fake.registrations).toHaveLength(2);
    expect(fake.connections).toBe(2);
    expect(node.stats.reconnects).toBe(1);
    expect(node.stats.cancelled).toBe(1);
    expect((await fake.offer(SCRIPTED_MODEL_ID, chat("back?")).result).text).toBe(SCRIPTED_ANSWER);
  });

  it("drops garbage and malformed frames, ignores unknown types and fields, accepts Go nulls", async () => {
    const { fake, node } = await setup({}, { ackHeartbeats: false });
    await node.start();
    const garbage: unknown[] = [
      "{garbage",
      "[1,2,3]",
      "null",
      '"a string"',
      "",
      { no: "type" },
      { type: 42 },
      { type: "job" },
      { type: "job", job_id: 7, model: SCRIPTED_MODEL_ID },
      { type: "job", job_id: "", model: SCRIPTED_MODEL_ID },
      { type: "job", job_id: "x".repeat(500), model: SCRIPTED_MODEL_ID },
      { type: "cancel" },
      { type: "cancel", job_id: "not-a-job" },
      { type: "heartbeat_ack", earned_total_sats: "lots" },
      { type: "heartbeat_ack", withdraw_history: [{ amount_sats: "x" }] },
      { type: "job_complete", job_id: "nope", tokens: 5, earned_usd: 0.1 },
      { type: "some_future_message", payload: { deep: [1, 2] } },
    ];
    for (const g of garbage) fake.send(g);
    // a Go gateway's nil slices arrive as null
    fake.send({ type: "heartbeat_ack", earned_total_sats: 77, broadcasts: null, withdraw_history: null });
    fake.send({ type: "ping", future_field: true });
    await fake.waitFor((m) => m.type === "pong");
    await fake.until(() => node.stats.earnedTotalSats === 77);
    const job = fake.offer(SCRIPTED_MODEL_ID, chat("still there?"));
    expect((await job.result).text).toBe(SCRIPTED_ANSWER);
    expect(fake.received.filter((m) => m.type === "accept" || m.type === "reject")).toHaveLength(1);
    expect(node.connected).toBe(true);
    expect(fake.connections).toBe(1);
  });
});
