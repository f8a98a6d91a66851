/**
 * The node's proxy_chunk frames of one socket read reach their attempt as one chunk
 * (routing/chunk-batch.ts). Billing must not notice: the same text, the same counts and the same
 * outcome as frame by frame, for any cut; and a hostile node's batch (invalid JSON or an oversize
 * frame in the middle, frames of another job, frames after proxy_done) acts in the order the frames
 * came: what came before is relayed and counted, nothing after it is.
 */
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { WebSocket } from "ws";
import { Attempt } from "../../gateway/routing/attempt.js";
import { ChunkBatch } from "../../gateway/routing/chunk-batch.js";
import { MAX_FRAME_BYTES, type JobOutcome } from "../../gateway/routing/index.js";
import type { OwlrunAgent } from "../support/owlrun-agent.js";
import { request, startGateway, type TestGateway, text, waitUntil } from "./harness.js";

const MODEL = "llama3.2:1b";

const event = (content: string) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: MODEL, choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
const usageEvent = (completion: number) =>
  `data: ${JSON.stringify({ id: "c1", object: "chat.completion.chunk", created: 1, model: MODEL, choices: [], usage: { prompt_tokens: 5, completion_tokens: completion, total_tokens: 5 + completion } })}\n\n`;

/** Mulberry32: a small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function attempt(onEnd: (o: JobOutcome) => void) {
  return new Attempt({
    wireId: "w",
    node: { nodeId: "n", keyHash: "k", send: () => undefined },
    model: MODEL,
    body: {},
    maxTokens: 1_000,
    prompt: { cap: 100, estimate: 10 },
    acceptTimeoutMs: 60_000,
    firstByteTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    onEnd: (_a, o) => onEnd(o),
  });
}

/** Feeds `pieces` (one socket read each: a list of frames) and returns what the buyer got. */
async function relay(reads: string[][], batched: boolean) {
  let outcome: JobOutcome | undefined;
  const a = attempt((o) => (outcome = o));
  a.offer();
  const out: string[] = [];
  const drained = (async () => {
    for await (const c of a.chunks()) out.push(JSON.stringify(c));
  })();
  const batch = new ChunkBatch();
  for (const frames of reads) {
    for (const f of frames) {
      if (batched) batch.add(a, f);
      else a.onChunk(f);
    }
    await new Promise((r) => setImmediate(r));
  }
  batch.flush();
  a.onDone();
  await drained;
  return { out, outcome: outcome! };
}

describe("ChunkBatch", () => {
  it("relays and counts exactly what frame-by-frame delivery does, for random cuts and reads", async () => {
    const next = rng(21);
    const alphabet = ["a", " b", "é", "€", "😀", "\\", '"', "\n", "ok"];
    for (let round = 0; round < 60; round++) {
      const words = Array.from(
        { length: 1 + Math.floor(next() * 30) },
        () => alphabet[Math.floor(next() * alphabet.length)]!,
      );
      const sse = words.map(event).join("") + usageEvent(words.length) + "data: [DONE]\n\n";
      // Cut into frames of 1–40 characters (CRLF-free, like Ollama), then group frames into reads.
      const frames: string[] = [];
      for (let i = 0; i < sse.length;) {
        const n = 1 + Math.floor(next() * 40);
        frames.push(sse.slice(i, i + n));
        i += n;
      }
      const reads: string[][] = [];
      for (let i = 0; i < frames.length;) {
        const n = 1 + Math.floor(next() * 12);
        reads.push(frames.slice(i, i + n));
        i += n;
      }
      const one = await relay(reads, false);
      const many = await relay(reads, true);
      expect(many.out).toEqual(one.out);
      expect(many.outcome).toEqual(one.outcome);
      expect(many.outcome.countedCompletionTokens).toBe(words.length);
    }
  });
});

describe("a hostile node's frames in one socket read", () => {
  let gw: TestGateway;
  afterEach(() => gw?.close());

  /** A node that answers nothing by itself: the test writes its frames. */
  async function silentNode() {
    gw = await startGateway();
    const node = await gw.agent({ models: [MODEL], heartbeatMs: 0, job: { action: "ignore" } });
    const ws = (node as unknown as { ws: WebSocket }).ws;
    const socket = (ws as unknown as { _socket: Socket })._socket;
    /** Sends the frames in one TCP write (so the gateway reads them together). */
    const burst = (frames: (string | Buffer)[]) => {
      socket.cork();
      for (const f of frames) node.send(f);
      socket.uncork();
    };
    return { node, burst };
  }

  const chunk = (jobId: string, data: string) => JSON.stringify({ type: "proxy_chunk", job_id: jobId, data });
  const cut = (s: string, n: number) =>
    Array.from({ length: Math.ceil(s.length / n) }, (_, i) => s.slice(i * n, i * n + n));

  async function offered(node: OwlrunAgent, n = 1) {
    await waitUntil(() => node.offered.length >= n, 2_000, "offer");
    return node.offered[n - 1]!;
  }

  it("invalid JSON mid-batch: the chunks before it are relayed and counted, then the node is dropped and nothing is billed", async () => {
    const { node, burst } = await silentNode();
    const dispatched = gw.routing.dispatcher.dispatch(request(MODEL));
    const id = await offered(node);
    const frames = cut(event("one") + event(" two"), 23).map((d) => chunk(id, d));
    burst([
      JSON.stringify({ type: "accept", job_id: id }),
      ...frames,
      "{not json",
      chunk(id, event(" three")),
    ]);
    const job = await dispatched;
    expect(await text(job)).toBe("one two");
    const outcome = await job.outcome;
    expect(outcome.status).toBe("failed");
    expect(outcome.countedCompletionTokens).toBe(2);
    await waitUntil(() => node.closeCode !== undefined, 2_000, "disconnect");
  });

  it("an oversize frame mid-batch ends the connection; what came before is all that was counted", async () => {
    const { node, burst } = await silentNode();
    const dispatched = gw.routing.dispatcher.dispatch(request(MODEL));
    const id = await offered(node);
    const frames = cut(event("one"), 23).map((d) => chunk(id, d));
    burst([...frames, chunk(id, "x".repeat(MAX_FRAME_BYTES + 10)), chunk(id, event(" two"))]);
    const job = await dispatched;
    expect(await text(job)).toBe("one");
    const outcome = await job.outcome;
    expect(outcome.status).toBe("failed");
    expect(outcome.countedCompletionTokens).toBe(1);
  });

  it("frames of two jobs interleaved in one read each reach their own job; a job it does not hold drops the node after them", async () => {
    const { node, burst } = await silentNode();
    const first = gw.routing.dispatcher.dispatch(request(MODEL));
    const a = await offered(node, 1);
    const second = gw.routing.dispatcher.dispatch(request(MODEL));
    const b = await offered(node, 2);
    const fa = cut(event("A1") + event("A2"), 17).map((d) => chunk(a, d));
    const fb = cut(event("B1") + event("B2") + event("B3"), 17).map((d) => chunk(b, d));
    const mixed: string[] = [];
    for (let i = 0; i < Math.max(fa.length, fb.length); i++) {
      if (fa[i]) mixed.push(fa[i]!);
      if (fb[i]) mixed.push(fb[i]!);
    }
    burst([...mixed, chunk("no-such-job", event("X"))]);
    const [ja, jb] = await Promise.all([first, second]);
    expect(await text(ja)).toBe("A1A2");
    expect(await text(jb)).toBe("B1B2B3");
    expect((await ja.outcome).countedCompletionTokens).toBe(2);
    expect((await jb.outcome).countedCompletionTokens).toBe(3);
    await waitUntil(() => node.closeCode !== undefined, 2_000, "disconnect");
  });

  it("frames after proxy_done in the same read are ignored: the job completes with what came before", async () => {
    const { node, burst } = await silentNode();
    const dispatched = gw.routing.dispatcher.dispatch(request(MODEL));
    const id = await offered(node);
    const frames = cut(event("one") + event(" two") + usageEvent(2), 23).map((d) => chunk(id, d));
    burst([
      ...frames,
      JSON.stringify({ type: "proxy_done", job_id: id }),
      chunk(id, event(" three")),
      chunk(id, event(" four")),
    ]);
    const job = await dispatched;
    expect(await text(job)).toBe("one two");
    const outcome = await job.outcome;
    expect(outcome.status).toBe("completed");
    expect(outcome.countedCompletionTokens).toBe(2);
    expect(outcome.billableUsage.completionTokens).toBe(2);
    expect(outcome.usageDisputed).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(node.closeCode).toBeUndefined(); // a late frame of a finished job is not a breach
  });
});
