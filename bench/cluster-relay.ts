/**
 * The cross-process relay against the local one, in one run. Process B (this process, with the
 * bundled mint and the buyers' accounts) serves STREAMS streams of TOKENS tokens at 30 tokens/s:
 * first from a node connected to B itself (local relay), then from a node connected to process A
 * (the built CLI, a child), so every offer, cancel and frame crosses PostgreSQL LISTEN/NOTIFY.
 * Node and clients run in a third process (bench/relay-load.ts). Reported per relayed token: CPU
 * of B, of A and of the PostgreSQL server's processes; first-token latency; how many frames each
 * NOTIFY carried; and the bare bus hop (NOTIFY from one process to another, p50/p99).
 *
 *   npm run build && BENCH_CLUSTER_STREAMS=20,100 BENCH_CLUSTER_TOKENS=60 tsx bench/cluster-relay.ts
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { getEncodedToken, type Proof } from "@cashu/cashu-ts";
import { Bus, type BusMessage } from "../gateway/cluster/index.js";
import { startGateway } from "../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../gateway/mint/index.js";
import { PgDatabase, silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { startCli, tempDir } from "../test/support/cli-process.js";
import { createDatabase, startPostgres } from "../test/support/postgres-server.js";
import { pct, saveSection } from "./results.js";

const STREAMS = (process.env.BENCH_CLUSTER_STREAMS ?? "20,100").split(",").map(Number);
const TOKENS = Number(process.env.BENCH_CLUSTER_TOKENS ?? 60);
const RATE = 30;
const FRAME_CHARS = 100_000; // one proxy_chunk frame per token, as Ollama-backed nodes send

const server = await startPostgres();
const { url: dbUrl } = await createDatabase(server.adminUrl, "bench");
const database = await PgDatabase.open(dbUrl);
const dir = tempDir("owlrun-bench-cluster-");
const b = await startGateway({
  dataDir: join(dir, "b"),
  trustedMints: [],
  port: 0,
  payoutIntervalMs: 0,
  sweepIntervalMs: 0,
  log: silentLogger,
  database,
  bundledMint: await createBundledMint({
    dataDir: join(dir, "mint"),
    lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
    log: silentLogger,
  }),
});
const a = await startCli(["gateway", "--port", "0", "--data-dir", join(dir, "a"), "--database-url", dbUrl]);

// Buyers: keys on B topped up from B's mint (60 requests a minute per key: one key per 40 streams).
const mintUrl = `${b.url}/mint`;
const client = await newWallet(mintUrl);
const runs = STREAMS.length * 2;
const keyCount = Math.ceil(Math.max(...STREAMS) / 40) * runs;
let purse: Proof[] = await mintProofs(client, keyCount * 2000 + 100);
const keys: string[] = [];
for (let i = 0; i < keyCount; i++) {
  const reg = await fetch(`${b.url}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  const { api_key } = (await reg.json()) as { api_key: string };
  const { send, keep } = await client.send(2000, purse);
  purse = keep;
  const top = await fetch(`${b.url}/v1/balance/topup`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
    body: JSON.stringify({ token: getEncodedToken({ mint: mintUrl, proofs: send }) }),
  });
  if (top.status !== 200) throw new Error(`topup: HTTP ${top.status}`);
  keys.push(api_key);
}

const TICK_MS = 1000 / 100; // USER_HZ
/** CPU ms a process has used (utime + stime from /proc). */
const procCpuMs = (pid: number): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0; // a backend that ended: its time is lost, which only understates PostgreSQL's share
  }
};
const selfCpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
/** Every PostgreSQL server process (backends and background workers). */
const pgPids = async () =>
  (await database.query<{ pid: number }>("SELECT pid FROM pg_stat_activity")).map((r) => r.pid);
const pgCpuMs = (pids: number[]) => pids.reduce((s, p) => s + procCpuMs(p), 0);

let nextKey = 0;
async function run(streams: number, remote: boolean) {
  const per = Math.ceil(streams / 40);
  const myKeys = keys.slice(nextKey, nextKey + per);
  nextKey += per;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      new URL("./relay-load.ts", import.meta.url).pathname,
      b.url,
      myKeys.join(","),
      String(streams),
      String(TOKENS),
      String(RATE),
      String(FRAME_CHARS),
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...(remote ? { BENCH_NODE_URL: a.url } : {}) },
    },
  );
  let c0 = { b: 0, a: 0, pg: 0 };
  let pids: number[] = [];
  let bus0 = b.gateway.cluster!.stats();
  let out = "";
  const result = await new Promise<Record<string, number> & { tokens: number; ms: number }>(
    (resolve, reject) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("START") && c0.b === 0) {
          c0 = { b: selfCpuMs(), a: procCpuMs(a.child.pid!), pg: 0 };
          void pgPids().then((p) => {
            pids = p;
            c0.pg = pgCpuMs(p);
          });
          bus0 = b.gateway.cluster!.stats();
        }
        const m = /RESULT (.*)\n/.exec(out);
        if (m) resolve(JSON.parse(m[1]!) as Record<string, number> & { tokens: number; ms: number });
      });
      child.on("exit", (code) => reject(new Error(`load process exited ${code}: ${out}`)));
    },
  );
  const cpu = { b: selfCpuMs() - c0.b, a: procCpuMs(a.child.pid!) - c0.a, pg: pgCpuMs(pids) - c0.pg };
  const bus = b.gateway.cluster!.stats();
  await new Promise((r) => child.once("exit", r));
  const perToken = (ms: number) => +((ms * 1000) / result.tokens).toFixed(1);
  const notifications = bus.notificationsIn - bus0.notificationsIn;
  return {
    relay: remote ? "cross-process (node on A, buyer on B)" : "local (node on B)",
    streams,
    tokens: result.tokens,
    expected_tokens: streams * TOKENS,
    b_cpu_us_per_token: perToken(cpu.b),
    a_cpu_us_per_token: remote ? perToken(cpu.a) : 0,
    postgres_cpu_us_per_token: perToken(cpu.pg),
    total_cpu_us_per_token: perToken(cpu.b + (remote ? cpu.a : 0) + cpu.pg),
    first_token_p50_ms: +result.first_p50_ms!.toFixed(1),
    first_token_p99_ms: +result.first_p99_ms!.toFixed(1),
    stalls: result.stalls,
    failed_streams: result.failed,
    notifications_to_b: notifications,
    messages_per_notification: notifications
      ? +((bus.messagesIn - bus0.messagesIn) / notifications).toFixed(2)
      : 0,
  };
}

/** The bare hop: a message from one process's bus to another's and back, one at a time. */
async function busHop(rounds: number) {
  const one = await PgDatabase.open(dbUrl, { max: 2 });
  const two = await PgDatabase.open(dbUrl, { max: 2 });
  let onPong: (() => void) | undefined;
  const ping = await Bus.open({
    database: one,
    processId: "benchping",
    log: silentLogger,
    onMessage: () => onPong?.(),
    onPresence: () => undefined,
  });
  const pong = await Bus.open({
    database: two,
    processId: "benchpong",
    log: silentLogger,
    onMessage: (m: BusMessage) => pong.send("benchping", m),
    onPresence: () => undefined,
  });
  const rtt: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      onPong = r;
      ping.send("benchpong", {
        t: "chunk",
        wire: "w",
        data: 'data: {"choices":[{"delta":{"content":" w1"}}]}\n\n',
      });
    });
    rtt.push(performance.now() - t0);
  }
  await ping.close();
  await pong.close();
  await one.close();
  await two.close();
  return {
    rounds,
    one_way_p50_ms: +(pct(rtt, 50) / 2).toFixed(3),
    one_way_p99_ms: +(pct(rtt, 99) / 2).toFixed(3),
  };
}

const waitFor = async (pred: () => boolean) => {
  const end = Date.now() + 10_000;
  while (!pred()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
};

const rows = [];
for (const s of STREAMS) {
  for (const remote of [false, true]) {
    // The previous run's node has left B's list (the next one connects elsewhere).
    await waitFor(() => b.gateway.dispatcher.models().length === 0);
    rows.push(await run(s, remote));
    console.log(JSON.stringify(rows.at(-1)));
  }
}
const hop = await busHop(500);
console.log(`cluster relay: ${TOKENS} tokens per stream at ${RATE} tokens/s, one frame per token`);
console.table(rows);
console.log("bus hop (NOTIFY, one process to another):", hop);
saveSection("cluster_relay", { tokens_per_stream: TOKENS, rate: RATE, rows, bus_hop: hop });
await a.stop();
await b.close();
await database.close();
await server.stop();
process.exit(0);
