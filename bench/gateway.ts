/**
 * Added latency of the gateway, measured in one run against the same provider connection:
 *   direct   — routing.dispatch on the provider connection (no HTTP, no payment)
 *   api key  — POST /v1/chat/completions with an rc_ key (hold + settle in the ledger)
 *   x-cashu  — the same paid per request with an X-Cashu token (claim swap + hold + change token)
 * then the paid requests per second the gateway sustains with 16 concurrent clients vs 1 (API key
 * and X-Cashu). The provider is a scripted Owlrun agent (instant replies), so the numbers are the
 * gateway's own (with the bundled mint in the same process, as `owlrun-mcp gateway` runs it).
 *
 *   npm run bench            (BENCH_N=… latency samples, BENCH_REQUESTS=… per throughput run,
 *                             BENCH_GATEWAY_PROFILE=<dir> for a profile of the X-Cashu run)
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { Session } from "node:inspector/promises";
import { join } from "node:path";
import { getEncodedToken, type Proof } from "@cashu/cashu-ts";
import express from "express";
import { createGateway } from "../gateway/index.js";
import { createMintService, createLightningBackend } from "../gateway/mint/index.js";
import { closeServer, inProcessFetch, listen, silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { tempDir } from "../test/support/cli-process.js";
import { startAgent } from "../test/support/owlrun-agent.js";
import { pct, saveSection } from "./results.js";

const N = Number(process.env.BENCH_N ?? 60);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 160);
const CLIENTS = 16;
// BENCH_GATEWAY_PROFILE=<dir>: a V8 CPU profile of the X-Cashu run with CLIENTS clients
// (`tsx bench/profile-summary.ts <file>` prints where the time went).
const PROFILE_DIR = process.env.BENCH_GATEWAY_PROFILE;
const inspector = PROFILE_DIR ? new Session() : undefined;
if (inspector) {
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 200 });
}
const MODEL = "owlrun-bench:tiny";

/** Process CPU (ms) per call of the last `time()` run, by label: steadier than wall time on a shared box. */
const cpuPerCall = new Map<number[], number>();

async function time(n: number, fn: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  cpuPerCall.set(out, (c.user + c.system) / 1000 / n);
  return out;
}

interface LoadResult {
  rps: number;
  p50: number;
  /** this process's CPU (gateway + bundled mint + scripted node) per request */
  cpuMsPerRequest: number;
}

/** One throughput run: `clients` loops in bench/gateway-load.ts share the requests `headers` describe. */
async function loadRun(
  url: string,
  model: string,
  clients: number,
  headers: Record<string, string>[],
): Promise<LoadResult> {
  const file = join(tempDir("owlrun-bench-load-"), "headers.json");
  writeFileSync(file, JSON.stringify(headers));
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      new URL("./gateway-load.ts", import.meta.url).pathname,
      url,
      file,
      String(clients),
      model,
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let out = "";
  let c0: NodeJS.CpuUsage | undefined;
  const profiling = inspector && clients > 1 && "x-cashu" in headers[0]!;
  const result = await new Promise<{ requests: number; ms: number; p50_ms: number }>((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!c0 && out.includes("START")) {
        c0 = process.cpuUsage();
        if (profiling) void inspector.post("Profiler.start");
      }
      const m = /RESULT (.*)\n/.exec(out);
      if (m) resolve(JSON.parse(m[1]!) as { requests: number; ms: number; p50_ms: number });
    });
    child.on("exit", (code) => reject(new Error(`load process exited ${code}: ${out}`)));
  });
  const cpu = process.cpuUsage(c0);
  if (profiling) {
    const { profile } = await inspector.post("Profiler.stop");
    const out = join(PROFILE_DIR!, `gateway-xcashu-${clients}.cpuprofile`);
    writeFileSync(out, JSON.stringify(profile));
    console.log(`profile: ${out}`);
  }
  await new Promise((r) => child.once("exit", r));
  return {
    rps: result.requests / (result.ms / 1000),
    p50: result.p50_ms,
    cpuMsPerRequest: (cpu.user + cpu.system) / 1000 / result.requests,
  };
}

async function main() {
  const dir = tempDir("owlrun-bench-gw-");
  const mint = await createMintService({
    dataDir: `${dir}/mint`,
    lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
    log: silentLogger,
  });
  const gateway = await createGateway({ dataDir: `${dir}/gateway`, trustedMints: [], log: silentLogger });
  const app = express();
  app.use("/mint", mint.router);
  app.use(gateway.app);
  const server = createServer(app);
  gateway.attach(server);
  const url = await listen(server, "127.0.0.1", 0);
  const mintUrl = `${url}/mint`;
  gateway.wallet.trust(mintUrl, true);
  // As startGateway composes it: the bundled mint's HTTP API called in-process (BENCH_MINT_HTTP=1:
  // over loopback HTTP instead, for the A/B).
  if (!process.env.BENCH_MINT_HTTP)
    gateway.wallet.connect(mintUrl, { fetch: inProcessFetch(app), sameProcess: true });
  const agent = await startAgent(url, { models: [MODEL], reply: ["ok"] });
  await new Promise((r) => setTimeout(r, 100));

  const body = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 };
  const post = (headers: Record<string, string>) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    }).then(async (r) => {
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    });

  const wallet = await newWallet(mintUrl);
  // Each key pays for 50 requests of a few sats; each token is one 8-sat proof.
  const keyCount = Math.ceil((N + 1 + 2 * REQUESTS) / 50) + 1;
  const count = N + 5 + 2 * REQUESTS;
  let purse: Proof[] = await mintProofs(wallet, keyCount * 500 + count * 8 + 100);
  // Keys are limited to 60 requests a minute: rotate through enough funded keys.
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    const reg = await fetch(`${url}/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const { api_key } = (await reg.json()) as { api_key: string };
    const { send, keep } = await wallet.send(500, purse);
    purse = keep;
    await fetch(`${url}/v1/balance/topup`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
      body: JSON.stringify({ token: getEncodedToken({ mint: mintUrl, proofs: send }) }),
    });
    keys.push(api_key);
  }
  let k = 0;
  const nextKey = () => keys[Math.floor(k++ / 50) % keys.length]!;
  // Tokens are made before the clock starts: client-side wallet work is not the gateway's latency.
  // One swap makes them all: each token is a single 8-sat proof (more than one request costs).
  const split = await wallet.send(
    8 * count,
    purse,
    {},
    {
      send: { type: "random", denominations: Array<number>(count).fill(8) },
    },
  );
  const tokens = split.send.map((p) => getEncodedToken({ mint: mintUrl, proofs: [p] }));

  const direct = await time(N, async () => {
    const job = await gateway.dispatcher.dispatch({
      jobId: "bench",
      model: MODEL,
      kind: "chat",
      body,
      maxTokens: 8,
      signal: new AbortController().signal,
    });
    for await (const _ of job.chunks) void _;
    await job.outcome;
  });
  await post({ authorization: `Bearer ${nextKey()}` });
  const keyed = await time(N, () => post({ authorization: `Bearer ${nextKey()}` }));
  let t = 0;
  await post({ "x-cashu": tokens[t++]! });
  const cashu = await time(N, () => post({ "x-cashu": tokens[t++]! }));

  const row = (name: string, xs: number[]) => ({
    path: name,
    p50_ms: +pct(xs, 50).toFixed(2),
    p99_ms: +pct(xs, 99).toFixed(2),
    added_p50_ms: +(pct(xs, 50) - pct(direct, 50)).toFixed(2),
    added_p99_ms: +(pct(xs, 99) - pct(direct, 99)).toFixed(2),
    ratio_p50: +(pct(xs, 50) / pct(direct, 50)).toFixed(2),
    cpu_ms_per_request: +(cpuPerCall.get(xs) ?? 0).toFixed(2),
  });
  const rows = [row("direct (routing only)", direct), row("API key (rc_)", keyed), row("X-Cashu", cashu)];
  console.log(`gateway added latency, ${N} requests each (one run)`);
  console.table(rows);

  // Throughput: the clients run in a child process (bench/gateway-load.ts), so the gateway's event
  // loop serves requests only; its CPU per request is read around each run.
  const run = (clients: number, headers: () => Record<string, string>) =>
    loadRun(url, MODEL, clients, Array.from({ length: REQUESTS + 1 }, headers));
  const keyed1 = await run(1, () => ({ authorization: `Bearer ${nextKey()}` }));
  const keyed16 = await run(CLIENTS, () => ({ authorization: `Bearer ${nextKey()}` }));
  const cashu1 = await run(1, () => ({ "x-cashu": tokens[t++]! }));
  const cashu16 = await run(CLIENTS, () => ({ "x-cashu": tokens[t++]! }));
  const tput = (path: string, one: LoadResult, many: LoadResult) => ({
    path,
    one_client_rps: Math.round(one.rps),
    [`${CLIENTS}_clients_rps`]: Math.round(many.rps),
    ratio: +(many.rps / one.rps).toFixed(2),
    one_client_cpu_ms: +one.cpuMsPerRequest.toFixed(2),
    [`${CLIENTS}_clients_cpu_ms`]: +many.cpuMsPerRequest.toFixed(2),
    [`${CLIENTS}_clients_p50_ms`]: +many.p50.toFixed(2),
  });
  const throughputRows = [tput("API key (rc_)", keyed1, keyed16), tput("X-Cashu", cashu1, cashu16)];
  console.log(
    `paid requests/s, ${REQUESTS} requests per run, ${CLIENTS} concurrent clients vs 1, clients in another process (one run)`,
  );
  console.table(throughputRows);
  const label = process.env.BENCH_MINT_HTTP ? "_mint_http" : "";
  saveSection(`gateway${label}`, { n: N, rows, goal_added_p50_ms: 10 });
  saveSection(`gateway_throughput${label}`, { requests: REQUESTS, clients: CLIENTS, rows: throughputRows });

  await agent.close();
  gateway.closeSockets();
  await closeServer(server);
  await gateway.close();
  await mint.close();
}

await main();
