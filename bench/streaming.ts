/**
 * End-to-end streaming tokens/s through the network (gateway + provider as child processes, paid
 * with X-Cashu, SSE read by the client) vs the embedded backend called directly in this process:
 * same generated model and backend settings (both test models, 32k context, four sequences, one
 * thread, as `owlrun-mcp provider --embedded` loads them), same prompts, same token cap, one run.
 * The two paths take turns prompt by prompt, so a busy neighbour slows both alike. The ratio is the
 * network's cost.
 *
 *   npm run bench            (BENCH_PROMPTS=…, BENCH_TOKENS=… to change the workload)
 *   BENCH_TIMELINE=1 tsx bench/streaming.ts
 *
 * BENCH_TIMELINE=1 also prints the time line of a request (p50 of each step's time since the client
 * sent it; the gateway and the provider write the marks with OWLRUN_TIMELINE=1, src/shared/timeline.ts)
 * and the CPU each process and thread spent over the measured requests (/proc, Linux only).
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import {
  type Backend,
  createEmbeddedBackend,
  ensureTestModels,
  RANDOM_MODEL_ID,
  TEST_MODEL_CONTEXT,
} from "../provider/index.js";
import { silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { startCli, tempDir } from "../test/support/cli-process.js";
import { pct, saveSection } from "./results.js";
import { cpuOf, type CpuSample, cpuRows, timelineRows } from "./streaming-timeline.js";

const PROMPTS = Number(process.env.BENCH_PROMPTS ?? 8);
const TOKENS = Number(process.env.BENCH_TOKENS ?? 200);
const TIMELINE = process.env.BENCH_TIMELINE === "1";
const now = () => performance.timeOrigin + performance.now();
// The first prompt warms each path up (model pages, JIT, connections) and is not counted.
const prompts = Array.from({ length: PROMPTS + 1 }, (_, i) => `Tell me story number ${i} about owls.`);

interface Run {
  tokens: number;
  ms: number;
  firstTokenMs: number;
  /** when the last content arrived: last − first is the streaming phase, ms − last the tail */
  lastTokenMs: number;
  /** epoch ms the request was sent and its stream ended (the marks between belong to it) */
  sentAt?: number;
  endedAt?: number;
  /** client-side marks, epoch ms */
  marks?: Record<string, number>;
}

const p50 = (xs: number[]) => +pct(xs, 50).toFixed(1);

const summary = (runs: Run[]) => {
  const tokens = runs.reduce((s, r) => s + r.tokens, 0);
  const ms = runs.reduce((s, r) => s + r.ms, 0);
  return {
    tokens,
    tokens_per_s: Math.round(tokens / (ms / 1000)),
    // First to last content: the relay's per-token rate without the per-request fixed costs.
    stream_tokens_per_s: Math.round(
      tokens / (runs.reduce((s, r) => s + r.lastTokenMs - r.firstTokenMs, 0) / 1000),
    ),
    first_token_p50_ms: p50(runs.map((r) => r.firstTokenMs)),
    // After the last content: finish, usage, settlement and the change token, [DONE].
    tail_p50_ms: p50(runs.map((r) => r.ms - r.lastTokenMs)),
  };
};

/** One prompt on the embedded backend in this process. */
async function directOne(backend: Backend, content: string): Promise<Run> {
  const t0 = performance.now();
  let first = 0;
  let last = 0;
  let tokens = 0;
  const body = {
    model: RANDOM_MODEL_ID,
    messages: [{ role: "user", content }],
    max_tokens: TOKENS,
    temperature: 0,
  };
  for await (const chunk of backend.chat(body, new AbortController().signal)) {
    if (chunk.choices.some((c) => c.delta.content)) {
      last = performance.now() - t0;
      if (!first) first = last;
    }
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return { tokens, ms: performance.now() - t0, firstTokenMs: first, lastTokenMs: last };
}

/** One prompt through the gateway, paid with X-Cashu, the SSE read as a client does. */
async function gatewayOne(url: string, token: string, content: string): Promise<Run> {
  const sentAt = now();
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-cashu": token },
    body: JSON.stringify({
      model: RANDOM_MODEL_ID,
      messages: [{ role: "user", content }],
      max_tokens: TOKENS,
      temperature: 0,
      stream: true,
    }),
  });
  if (r.status !== 200 || !r.body) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  const headersAt = now();
  let first = 0;
  let last = 0;
  let count = 0;
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of r.body) {
    buffered += decoder.decode(bytes, { stream: true });
    const events = buffered.split("\n\n");
    buffered = events.pop()!;
    for (const e of events) {
      if (!e.startsWith("data: ") || e === "data: [DONE]") continue;
      const chunk = JSON.parse(e.slice(6)) as {
        choices?: { delta?: { content?: string } }[];
        usage?: { completion_tokens: number };
      };
      if (chunk.choices?.some((c) => c.delta?.content)) {
        last = performance.now() - t0;
        if (!first) first = last;
      }
      if (chunk.usage) count = chunk.usage.completion_tokens;
    }
  }
  return {
    tokens: count,
    ms: performance.now() - t0,
    firstTokenMs: first,
    lastTokenMs: last,
    sentAt,
    endedAt: now(),
    marks: { "c.headers": headersAt, "c.token": sentAt + first, "c.last": sentAt + last },
  };
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

async function main() {
  const backend = await createEmbeddedBackend({
    models: ensureTestModels(tempDir("owlrun-bench-models-")),
    contextSize: TEST_MODEL_CONTEXT,
    sequences: 4,
    threads: 1,
    log: silentLogger,
  });
  const marks: Record<string, string> = TIMELINE ? { OWLRUN_TIMELINE: "1" } : {};
  const gw = await startCli(
    ["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "10"],
    marks,
  );
  const provider = await startCli(
    ["provider", "--gateway", gw.url, "--embedded", "--data-dir", tempDir()],
    { OWLRUN_LOG_LEVEL: "info", ...marks },
    60_000,
    /provider connected/,
  );
  const gatewayRuns: Run[] = [];
  const directRuns: Run[] = [];
  // CPU of the measured prompts only: the bench process's share is split by which path ran.
  let clientMs = 0;
  let directMs = 0;
  let cpuStart: { gateway?: CpuSample; provider?: CpuSample } = {};
  let cpuEnd: { gateway?: CpuSample; provider?: CpuSample } = {};
  try {
    const mintUrl = `${gw.url}/mint`;
    const wallet = await newWallet(mintUrl);
    let purse = await mintProofs(wallet, 40 * prompts.length);
    const tokens: string[] = [];
    for (let i = 0; i < prompts.length; i++) {
      const { send, keep } = await wallet.send(40, purse);
      purse = keep;
      tokens.push(getEncodedToken({ mint: mintUrl, proofs: send }));
    }
    for (let i = 0; i < 100; i++) {
      const models = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: { id: string }[] };
      if (models.data.some((m) => m.id === RANDOM_MODEL_ID)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [i, content] of prompts.entries()) {
      if (i === 1) cpuStart = { gateway: cpuOf(gw.child.pid), provider: cpuOf(provider.child.pid) };
      let before = process.cpuUsage();
      gatewayRuns.push(await gatewayOne(gw.url, tokens[i]!, content));
      if (i > 0) clientMs += cpuMs(process.cpuUsage(before));
      if (i === prompts.length - 1)
        cpuEnd = { gateway: cpuOf(gw.child.pid), provider: cpuOf(provider.child.pid) };
      before = process.cpuUsage();
      directRuns.push(await directOne(backend, content));
      if (i > 0) directMs += cpuMs(process.cpuUsage(before));
    }
  } finally {
    await provider.stop();
    await gw.stop();
    await backend.close();
  }
  // The first prompt warms each path up (model pages, JIT, connections) and is not counted.
  const measured = gatewayRuns.slice(1);
  const viaGateway = summary(measured);
  const embedded = summary(directRuns.slice(1));
  const rows = [
    { path: "embedded backend, direct", ...embedded },
    { path: "gateway + provider (X-Cashu, SSE)", ...viaGateway },
  ];
  const ratio = +(viaGateway.tokens_per_s / embedded.tokens_per_s).toFixed(2);
  const streamRatio = +(viaGateway.stream_tokens_per_s / embedded.stream_tokens_per_s).toFixed(2);
  console.log(
    `streaming ${RANDOM_MODEL_ID}, ${PROMPTS} prompts × ≤ ${TOKENS} tokens (one run, paths alternating)`,
  );
  console.table(rows);
  console.log(`ratio gateway / direct tokens/s: ${ratio} (stream phase ${streamRatio})`);
  if (TIMELINE) {
    const stderr = gw.stderr() + provider.stderr();
    console.log("time line of one streamed X-Cashu request (p50 ms since the client sent it):");
    console.table(timelineRows(measured, stderr, embedded.first_token_p50_ms));
    console.log("CPU over the measured requests (ms; per token in µs):");
    const cpu = {
      gateway: cpuEnd.gateway?.minus(cpuStart.gateway),
      provider: cpuEnd.provider?.minus(cpuStart.provider),
    };
    console.table(cpuRows(cpu, clientMs, directMs, viaGateway.tokens, embedded.tokens));
  }
  saveSection("streaming", {
    model: RANDOM_MODEL_ID,
    prompts: PROMPTS,
    max_tokens: TOKENS,
    rows,
    ratio,
    stream_ratio: streamRatio,
  });
}

await main();
