/**
 * The gateway's per-frame relay code alone, without sockets or a loaded box's scheduling: node
 * frames (JSON text, as the WebSocket delivers them) → parseNodeFrame → Attempt (SSE reassembly,
 * chunk checks, token and byte counts) → the chunk stream the API reads. CPU per token for one
 * frame per token and for 23-character frames; the same text and counts either way. Frames go
 * through the gateway's ChunkBatch as in routing/sockets.ts (a token's frames, delivered in one
 * turn as one socket read delivers them, reach the attempt as one chunk).
 *
 *   tsx bench/relay-frames.ts            (BENCH_TOKENS=… per job, BENCH_JOBS=…)
 */
import { Attempt } from "../gateway/routing/attempt.js";
import { ChunkBatch } from "../gateway/routing/chunk-batch.js";
import { parseNodeFrame } from "../gateway/routing/protocol.js";
import { saveSection } from "./results.js";

const TOKENS = Number(process.env.BENCH_TOKENS ?? 150);
const JOBS = Number(process.env.BENCH_JOBS ?? 400);

const event = (w: string) =>
  `data: ${JSON.stringify({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1, model: "m", system_fingerprint: "fp_ollama", choices: [{ index: 0, delta: { role: "assistant", content: w }, finish_reason: null }] })}\n\n`;
const sse = Array.from({ length: TOKENS }, (_, i) => event(` w${i % 10}`));

function framesOf(cut: number): string[] {
  const out: string[] = [];
  for (const e of sse) {
    for (let i = 0; i < e.length; i += cut) {
      out.push(JSON.stringify({ type: "proxy_chunk", job_id: "job-1", data: e.slice(i, i + cut) }));
    }
  }
  return out;
}

async function job(frames: string[]): Promise<number> {
  const a = new Attempt({
    wireId: "job-1",
    node: { nodeId: "n", keyHash: "k", send: () => undefined },
    model: "m",
    body: {},
    maxTokens: TOKENS + 10,
    prompt: { cap: 100, estimate: 10 },
    acceptTimeoutMs: 60_000,
    firstByteTimeoutMs: 60_000,
    idleTimeoutMs: 60_000,
    onEnd: () => undefined,
  });
  a.offer();
  const drained = (async () => {
    let n = 0;
    for await (const c of a.chunks()) n += c.choices?.length ?? 0;
    return n;
  })();
  // One token's frames per event-loop turn, as a stream at a realistic rate delivers them.
  const perToken = frames.length / TOKENS;
  const batch = new ChunkBatch();
  for (let t = 0; t < TOKENS; t++) {
    for (let i = t * perToken; i < (t + 1) * perToken; i++) {
      const f = parseNodeFrame(frames[i]!);
      if (f.kind === "message" && f.msg.type === "proxy_chunk") batch.add(a, f.msg.data);
    }
    await new Promise((r) => setImmediate(r));
  }
  batch.flush();
  a.onDone();
  return drained;
}

const rows = [];
for (const [label, cut] of [
  ["one frame per token", 100_000],
  ["23 characters", 23],
] as const) {
  const frames = framesOf(cut);
  for (let i = 0; i < 20; i++) await job(frames); // warm-up
  const c0 = process.cpuUsage();
  let chunks = 0;
  for (let i = 0; i < JOBS; i++) chunks += await job(frames);
  const c = process.cpuUsage(c0);
  rows.push({
    frames: label,
    frames_per_token: +(frames.length / TOKENS).toFixed(1),
    cpu_us_per_token: +((c.user + c.system) / (JOBS * TOKENS)).toFixed(2),
    chunks_per_job: chunks / JOBS,
  });
}
console.table(rows);
saveSection(`relay_frames${process.env.BENCH_LABEL ? `_${process.env.BENCH_LABEL}` : ""}`, {
  tokens: TOKENS,
  jobs: JOBS,
  rows,
});
