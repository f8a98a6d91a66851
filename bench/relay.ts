/**
 * The relay under many concurrent streams at a realistic token rate: the gateway (with its bundled
 * mint, in this process) relays STREAMS streams of TOKENS tokens at 30 tokens/s each from a scripted
 * node; node and clients run in a child process (bench/relay-load.ts), so the CPU measured here is
 * the gateway's. Reported: gateway CPU per relayed token, event-loop delay p99, first token p50/p99,
 * stalls (a stream with a gap over 5 token periods), for one proxy_chunk frame per token and for
 * 23-character frames (about 9 frames per token), which must cost the gateway the same.
 *
 * Each stream count and frame cut also runs against the floor (bench/relay-floor.ts): a bare relay
 * in this process with the same load child and sockets but no gateway logic, so the table shows
 * what the I/O alone costs on this box and the gateway's cost above it. CPU is split into user and
 * system time, and `node_reads_per_token` counts the reads of the node's socket (does a token's
 * 9 frames arrive in one read or many).
 *
 *   BENCH_RELAY_STREAMS=50,200,400 BENCH_RELAY_TOKENS=60 tsx bench/relay.ts
 *
 * BENCH_RELAY_PROFILE=<dir> writes a V8 CPU profile of the gateway per run (only the streaming, not
 * the setup): `tsx bench/profile-summary.ts <file>` prints where the time went.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { join } from "node:path";
import { getEncodedToken, type Proof } from "@cashu/cashu-ts";
import { startGateway } from "../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../gateway/mint/index.js";
import { silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { tempDir } from "../test/support/cli-process.js";
import { saveSection } from "./results.js";
import { startFloorRelay } from "./relay-floor.js";
import type { Server } from "node:http";
import { WS_PATH } from "../gateway/routing/index.js";

const STREAMS = (process.env.BENCH_RELAY_STREAMS ?? "50,200,400").split(",").map(Number);
const TOKENS = Number(process.env.BENCH_RELAY_TOKENS ?? 150);
const RATE = 30;
const FRAMES = [100_000, 23];

const dir = tempDir("owlrun-bench-relay-");
const gw = await startGateway({
  dataDir: join(dir, "gateway"),
  trustedMints: [],
  port: 0,
  payoutIntervalMs: 0,
  sweepIntervalMs: 0,
  log: silentLogger,
  bundledMint: await createBundledMint({
    dataDir: join(dir, "mint"),
    lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
    log: silentLogger,
  }),
});
const mintUrl = `${gw.url}/mint`;
const floor = await startFloorRelay("owlrun-bench:relay");

/** Reads (socket `data` events) of the node WebSocket on each server. */
const nodeReads = new Map<Server, number>();
for (const server of [gw.server, floor.server]) {
  nodeReads.set(server, 0);
  server.on("upgrade", (req, socket) => {
    if (new URL(req.url ?? "/", "http://x").pathname !== WS_PATH) return;
    socket.on("data", () => nodeReads.set(server, nodeReads.get(server)! + 1));
  });
}
const client = await newWallet(mintUrl);
// Each stream count also runs once with 2-token streams: the CPU of a request without its relay.
const runs = STREAMS.length * (FRAMES.length + 1);
// Keys are limited to 60 requests a minute: one key per 40 streams of each run.
const keyCount = Math.ceil(Math.max(...STREAMS) / 40) * runs;
let purse: Proof[] = await mintProofs(client, keyCount * 2000 + 100);
const keys: string[] = [];
for (let i = 0; i < keyCount; i++) {
  const reg = await fetch(`${gw.url}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  const { api_key } = (await reg.json()) as { api_key: string };
  const { send, keep } = await client.send(2000, purse);
  purse = keep;
  const top = await fetch(`${gw.url}/v1/balance/topup`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
    body: JSON.stringify({ token: getEncodedToken({ mint: mintUrl, proofs: send }) }),
  });
  if (top.status !== 200) throw new Error(`topup: HTTP ${top.status}`);
  keys.push(api_key);
}

const PROFILE_DIR = process.env.BENCH_RELAY_PROFILE;
const inspector = PROFILE_DIR ? new Session() : undefined;
if (inspector) {
  inspector.connect();
  await inspector.post("Profiler.enable");
  await inspector.post("Profiler.setSamplingInterval", { interval: 200 });
}

const cpu = () => process.cpuUsage();

let nextKey = 0;
async function run(
  streams: number,
  frameChars: number,
  tokens = TOKENS,
  target: "gateway" | "floor" = "gateway",
) {
  const per = Math.ceil(streams / 40);
  // The floor takes no payment: it needs no keys of its own.
  const myKeys = target === "floor" ? keys.slice(0, per) : keys.slice(nextKey, nextKey + per);
  if (target === "gateway") nextKey += per;
  const server = target === "floor" ? floor.server : gw.server;
  const url = target === "floor" ? floor.url : gw.url;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      new URL("./relay-load.ts", import.meta.url).pathname,
      url,
      myKeys.join(","),
      String(streams),
      String(tokens),
      String(RATE),
      String(frameChars),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const delay = monitorEventLoopDelay({ resolution: 10 });
  let c0: NodeJS.CpuUsage | undefined;
  let reads0 = 0;
  let out = "";
  const result = await new Promise<Record<string, number> & { tokens: number; ms: number }>(
    (resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("START") && !c0) {
          c0 = cpu();
          reads0 = nodeReads.get(server)!;
          delay.enable();
          void inspector?.post("Profiler.start");
        }
        const m = /RESULT (.*)\n/.exec(out);
        if (m) resolve(JSON.parse(m[1]!) as Record<string, number> & { tokens: number; ms: number });
      });
      child.on("exit", (code) => reject(new Error(`load process exited ${code}: ${out}`)));
    },
  );
  const used = process.cpuUsage(c0);
  const reads = nodeReads.get(server)! - reads0;
  const cpuTotal = (used.user + used.system) / 1000;
  delay.disable();
  if (inspector) {
    const { profile } = await inspector.post("Profiler.stop");
    const file = join(PROFILE_DIR!, `relay-${target}-${streams}-${frameChars}-${tokens}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    console.log(`profile: ${file}`);
  }
  await new Promise((r) => child.once("exit", r));
  return {
    target,
    streams,
    frame_chars: frameChars === 100_000 ? "one frame per token" : frameChars,
    tokens: result.tokens,
    expected_tokens: streams * tokens,
    cpu_ms: cpuTotal,
    user_pct: +((used.user / (used.user + used.system)) * 100).toFixed(0),
    node_reads_per_token: +(reads / Math.max(1, result.tokens)).toFixed(2),
    served: streams - result.failed!,
    tokens_per_s: Math.round(result.tokens / (result.ms / 1000)),
    gateway_cpu_us_per_token: +((cpuTotal * 1000) / result.tokens).toFixed(1),
    gateway_core_pct: +((cpuTotal / result.ms) * 100).toFixed(1),
    loop_delay_p99_ms: +(delay.percentile(99) / 1e6).toFixed(1),
    first_token_p50_ms: +result.first_p50_ms!.toFixed(1),
    first_token_p99_ms: +result.first_p99_ms!.toFixed(1),
    stalls: result.stalls,
    failed_streams: result.failed,
    max_gap_ms: +result.max_gap_ms!.toFixed(0),
  };
}

const TARGETS = (process.env.BENCH_RELAY_TARGETS ?? "gateway,floor").split(",") as ("gateway" | "floor")[];
const rows = [];
for (const s of STREAMS) {
  for (const target of TARGETS) {
    // What a request costs apart from relaying (auth, hold, dispatch, settle): subtracted below, so
    // `relay_cpu_us_per_token` is the relay's own cost per token, whatever the stream length.
    const base = await run(s, 100_000, 2, target);
    const perRequestMs = base.cpu_ms / Math.max(1, base.served);
    for (const f of FRAMES) {
      const r = await run(s, f, TOKENS, target);
      const { cpu_ms, served, ...row } = r;
      rows.push({
        ...row,
        request_cpu_ms: +perRequestMs.toFixed(2),
        relay_cpu_us_per_token: +(((cpu_ms - served * perRequestMs) * 1000) / r.tokens).toFixed(1),
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
}
console.log(`relay: ${TOKENS} tokens per stream at ${RATE} tokens/s; node and clients in another process`);
console.table(rows);
saveSection(`relay${process.env.BENCH_RELAY_LABEL ? `_${process.env.BENCH_RELAY_LABEL}` : ""}`, {
  tokens_per_stream: TOKENS,
  rate: RATE,
  rows,
  goal_cpu_us_per_token: 20,
});
await floor.close();
await gw.close();
