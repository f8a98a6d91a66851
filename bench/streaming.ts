/**
 * End-to-end streaming tokens/s through the network (gateway + provider as child processes, paid
 * with X-Cashu, SSE read by the client) vs the embedded backend called directly in this process:
 * same generated model, same prompts, same token cap, one run. The ratio is the network's cost.
 *
 *   npm run bench            (BENCH_PROMPTS=…, BENCH_TOKENS=… to change the workload)
 *   BENCH_TIMELINE=1 tsx bench/streaming.ts
 *
 * BENCH_TIMELINE=1 also prints the time line of a request (p50 of each step's time since the client
 * sent it; the gateway and the provider write the marks with OWLRUN_TIMELINE=1, src/shared/timeline.ts)
 * and the CPU each process and thread spent over the measured requests (/proc, Linux only).
 */
import { getEncodedToken } from "@cashu/cashu-ts";
import { createEmbeddedBackend, ensureTestModels, RANDOM_MODEL_ID } from "../provider/index.js";
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

async function direct(): Promise<{ runs: Run[]; cpu: NodeJS.CpuUsage }> {
  // As `owlrun-mcp provider --embedded` loads the test models: one thread, four sequences.
  const backend = await createEmbeddedBackend({
    models: { [RANDOM_MODEL_ID]: ensureTestModels(`${tempDir("owlrun-bench-models-")}`)[RANDOM_MODEL_ID]! },
    threads: 1,
    log: silentLogger,
  });
  const runs: Run[] = [];
  let cpuStart: NodeJS.CpuUsage | undefined;
  try {
    for (const [i, content] of prompts.entries()) {
      if (i === 1) cpuStart = process.cpuUsage();
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
      runs.push({ tokens, ms: performance.now() - t0, firstTokenMs: first, lastTokenMs: last });
    }
  } finally {
    await backend.close();
  }
  return { runs: runs.slice(1), cpu: process.cpuUsage(cpuStart) };
}

interface GatewayRuns {
  runs: Run[];
  /** the children's stderr (timeline marks) */
  stderr: string;
  cpu: { gateway?: CpuSample; provider?: CpuSample; client: NodeJS.CpuUsage };
}

async function throughGateway(): Promise<GatewayRuns> {
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
    const runs: Run[] = [];
    let cpuStart: { gateway?: CpuSample; provider?: CpuSample; client: NodeJS.CpuUsage } | undefined;
    for (const [i, content] of prompts.entries()) {
      if (i === 1) {
        cpuStart = {
          gateway: cpuOf(gw.child.pid),
          provider: cpuOf(provider.child.pid),
          client: process.cpuUsage(),
        };
      }
      const sentAt = now();
      const t0 = performance.now();
      const r = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-cashu": tokens[i]! },
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
      runs.push({
        tokens: count,
        ms: performance.now() - t0,
        firstTokenMs: first,
        lastTokenMs: last,
        sentAt,
        endedAt: now(),
        marks: { "c.headers": headersAt, "c.token": sentAt + first, "c.last": sentAt + last },
      });
    }
    const cpuEnd = { gateway: cpuOf(gw.child.pid), provider: cpuOf(provider.child.pid) };
    return {
      runs: runs.slice(1),
      stderr: gw.stderr() + provider.stderr(),
      cpu: {
        gateway: cpuEnd.gateway?.minus(cpuStart?.gateway),
        provider: cpuEnd.provider?.minus(cpuStart?.provider),
        client: process.cpuUsage(cpuStart?.client),
      },
    };
  } finally {
    await provider.stop();
    await gw.stop();
  }
}

async function main() {
  const gateway = await throughGateway();
  const directRuns = await direct();
  const viaGateway = summary(gateway.runs);
  const embedded = summary(directRuns.runs);
  const rows = [
    { path: "embedded backend, direct", ...embedded },
    { path: "gateway + provider (X-Cashu, SSE)", ...viaGateway },
  ];
  const ratio = +(viaGateway.tokens_per_s / embedded.tokens_per_s).toFixed(2);
  console.log(`streaming ${RANDOM_MODEL_ID}, ${PROMPTS} prompts × ≤ ${TOKENS} tokens (one run)`);
  console.table(rows);
  console.log(`ratio gateway / direct tokens/s: ${ratio}`);
  if (TIMELINE) {
    console.log("time line of one streamed X-Cashu request (p50 ms since the client sent it):");
    console.table(timelineRows(gateway.runs, gateway.stderr, embedded.first_token_p50_ms));
    console.log("CPU over the measured requests (ms; per token in µs):");
    console.table(cpuRows(gateway.cpu, directRuns.cpu, viaGateway.tokens, embedded.tokens));
  }
  saveSection("streaming", { model: RANDOM_MODEL_ID, prompts: PROMPTS, max_tokens: TOKENS, rows, ratio });
}

await main();
