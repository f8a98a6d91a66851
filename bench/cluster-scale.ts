/**
 * Paid requests/s and added latency of one gateway process on SQLite, one on PostgreSQL and three on
 * one PostgreSQL, measured in one run. Every gateway is the built CLI (`owlrun-mcp gateway`, its
 * bundled mint in-process; the PostgreSQL processes share the database and the mint's master
 * secret), so the CPU of each process and of the PostgreSQL server is read from /proc. This process
 * runs the clients and one scripted provider per gateway process (instant replies: the latency is
 * the gateway's own, plus a loopback HTTP hop and the node's WebSocket round trip). Clients are
 * spread over the processes (client i → process i mod N), 1/8/32 at once, X-Cashu and API keys.
 *
 *   npm run build && tsx bench/cluster-scale.ts   (BENCH_SCALE_REQUESTS=… per run, BENCH_SCALE_CLIENTS=1,8,32)
 */
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../test/support/cli-process.js";
import { type OwlrunAgent, startAgent } from "../test/support/owlrun-agent.js";
import { createDatabase, startPostgres } from "../test/support/postgres-server.js";
import { pct, saveSection } from "./results.js";
import pgLib from "pg";

const CLIENTS = (process.env.BENCH_SCALE_CLIENTS ?? "1,8,32").split(",").map(Number);
/** Requests per run: at least 4 per client, and never fewer than REQUESTS (1 client: a third). */
const REQUESTS = Number(process.env.BENCH_SCALE_REQUESTS ?? 192);
const perRun = (clients: number) =>
  clients === 1 ? Math.ceil(REQUESTS / 3) : Math.max(REQUESTS, clients * 4);
const MODEL = "owlrun-bench:tiny";
const PER_KEY = 50; // requests each API key pays for (500 sats; 60 a minute per key and process)
const WARMUP = 5; // per process and path, before the clock

// ---- CPU from /proc -------------------------------------------------------------------------------
const TICK_MS = 1000 / 100; // USER_HZ
const stat = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ");
/** CPU ms a process has used (utime + stime); 0 once it is gone. */
function procCpuMs(pid: number): number {
  try {
    const f = stat(pid)[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * TICK_MS;
  } catch {
    return 0;
  }
}
/** The PostgreSQL processes this run started: `postgres` descendants of this process. */
function postgresPids(): number[] {
  const parent = new Map<number, number>();
  const comm = new Map<number, string>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const [head, rest] = stat(Number(e));
      comm.set(Number(e), head!.slice(head!.indexOf("(") + 1));
      parent.set(Number(e), Number(rest!.split(" ")[1]));
    } catch {
      /* gone meanwhile */
    }
  }
  const mine = (pid: number): boolean => {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p))
      if (p === process.pid) return true;
    return false;
  };
  return [...comm].filter(([pid, c]) => c === "postgres" && mine(pid)).map(([pid]) => pid);
}
const selfCpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
/** Busy and total CPU ticks of the whole machine (every process, the other helpers' too). */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

// ---- the processes --------------------------------------------------------------------------------
const server = await startPostgres();
const { url: dbUrl } = await createDatabase(server.adminUrl, "scale");
const admin = new pgLib.Client({ connectionString: dbUrl });
await admin.connect();
const dir = tempDir("owlrun-bench-scale-");
const gatewayArgs = (name: string) => [
  "gateway",
  "--port",
  "0",
  "--data-dir",
  join(dir, name),
  "--account-signups-per-hour",
  "100000",
];
const sqlite = await startCli(gatewayArgs("sqlite"));
const pg = [await startCli([...gatewayArgs("pg1"), "--database-url", dbUrl])];
// Processes sharing a database sign with the same keys: copy the first one's mint master secret.
for (const name of ["pg2", "pg3"]) {
  mkdirSync(join(dir, name, "mint"), { recursive: true });
  copyFileSync(join(dir, "pg1", "mint", "master-secret"), join(dir, name, "mint", "master-secret"));
}
const agents: OwlrunAgent[] = [];
const provider = async (url: string) =>
  agents.push(await startAgent(url, { models: [MODEL], reply: ["ok"] }));
await provider(sqlite.url);
await provider(pg[0]!.url);

// ---- money: keys and single-proof tokens, made before any clock starts -----------------------------
interface Funds {
  keys: string[];
  proofs: Proof[];
}
const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

async function fund(url: string, requests: number, keyCount: number): Promise<Funds> {
  const mintUrl = `${url}/mint`;
  const wallet: Wallet = await newWallet(mintUrl);
  let purse = await mintProofs(wallet, keyCount * 500 + requests * 8 + 100, 60_000);
  const keys: string[] = [];
  for (let i = 0; i < keyCount; i++) {
    const { api_key } = (await (await post(url, "/v1/auth/register", {})).json()) as { api_key: string };
    const { send, keep } = await wallet.send(500, purse);
    purse = keep;
    const top = await post(
      url,
      "/v1/balance/topup",
      { token: getEncodedToken({ mint: mintUrl, proofs: send }) },
      { authorization: `Bearer ${api_key}` },
    );
    if (top.status !== 200) throw new Error(`topup: HTTP ${top.status}`);
    keys.push(api_key);
  }
  const split = await wallet.send(
    requests * 8,
    purse,
    {},
    {
      send: { type: "random", denominations: Array<number>(requests).fill(8) },
    },
  );
  return { keys, proofs: split.send };
}

const requestsOf = (processes: number) =>
  CLIENTS.reduce((n, c) => n + perRun(c), 0) + WARMUP * processes + 10;
/** Each client is its own buyer: a key of its own, a fresh one every PER_KEY requests. */
const keysOf = () => CLIENTS.reduce((n, c) => n + c + Math.ceil(perRun(c) / PER_KEY), 0) + 4;
const sqliteFunds = await fund(sqlite.url, requestsOf(1), keysOf());
const pgFunds = await fund(pg[0]!.url, requestsOf(1) + requestsOf(3), 2 * keysOf());

// ---- the runs -------------------------------------------------------------------------------------
const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 });
type Path = "X-Cashu" | "API key";

/** One client's payments: X-Cashu tokens from the common stock, or its own API key. */
function payer(funds: Funds, path: Path) {
  let key: string | undefined;
  let used = 0;
  return (url: string): Record<string, string> => {
    if (path === "API key") {
      if (!key || used++ === PER_KEY) {
        key = funds.keys.pop();
        used = 1;
      }
      if (!key) throw new Error("out of keys");
      return { authorization: `Bearer ${key}` };
    }
    const proof = funds.proofs.pop();
    if (!proof) throw new Error("out of tokens");
    // Every PostgreSQL process runs the same mint (one database, one master secret) under its own URL.
    return { "x-cashu": getEncodedToken({ mint: `${url}/mint`, proofs: [proof] }) };
  };
}

async function request(url: string, headers: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  await r.arrayBuffer();
  return performance.now() - t0;
}

const ms = (x: number) => +x.toFixed(2);

async function run(setup: string, procs: CliProcess[], funds: Funds, path: Path, clients: number) {
  const total = perRun(clients);
  const pgPids = postgresPids();
  const cpu0 = {
    procs: procs.map((p) => procCpuMs(p.child.pid!)),
    pg: pgPids.map(procCpuMs),
    self: selfCpuMs(),
    machine: machineTicks(),
  };
  // What PostgreSQL's active backends are doing, sampled: waiting on a row/advisory lock or not.
  const waits = { samples: 0, active: 0, lock: 0, statements: new Map<string, number>() };
  const sampler = setInterval(() => {
    void admin
      .query<{ waiting: boolean; query: string }>(
        `SELECT wait_event_type = 'Lock' AS waiting, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query
           FROM pg_stat_activity WHERE state = 'active' AND datname = current_database() AND pid <> pg_backend_pid()`,
      )
      .then((r) => {
        waits.samples++;
        waits.active += r.rows.length;
        for (const row of r.rows.filter((x) => x.waiting)) {
          waits.lock++;
          waits.statements.set(row.query, (waits.statements.get(row.query) ?? 0) + 1);
        }
      });
  }, 100);
  const lat: number[] = [];
  let left = total;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const url = procs[i % procs.length]!.url;
      const pay = payer(funds, path);
      while (left-- > 0) lat.push(await request(url, pay(url)));
    }),
  );
  const wallMs = performance.now() - t0;
  clearInterval(sampler);
  const m1 = machineTicks();
  const seen = new Set(pgPids);
  const pgNow = postgresPids();
  const pgMs =
    pgPids.reduce((s, p, i) => s + Math.max(0, procCpuMs(p) - cpu0.pg[i]!), 0) +
    pgNow.filter((p) => !seen.has(p)).reduce((s, p) => s + procCpuMs(p), 0);
  const procMs = procs.map((p, i) => procCpuMs(p.child.pid!) - cpu0.procs[i]!);
  const perReq = (x: number) => ms(x / total);
  const gatewayMs = procMs.reduce((a, b) => a + b, 0);
  return {
    setup,
    path,
    clients,
    requests: total,
    rps: Math.round(total / (wallMs / 1000)),
    p50_ms: ms(pct(lat, 50)),
    p99_ms: ms(pct(lat, 99)),
    gateway_cpu_ms_per_req: procMs.map(perReq),
    postgres_cpu_ms_per_req: perReq(pgMs),
    driver_cpu_ms_per_req: perReq(selfCpuMs() - cpu0.self),
    server_cpu_ms_per_req: perReq(gatewayMs + pgMs),
    /** share of one core each gateway process used (1.0 = its event loop is full) */
    gateway_core_use: procMs.map((x) => +(x / wallMs).toFixed(2)),
    postgres_core_use: +(pgMs / wallMs).toFixed(2),
    bench_core_use: +((gatewayMs + pgMs + selfCpuMs() - cpu0.self) / wallMs).toFixed(2),
    /** busy share of the machine's cores, every process on it (other helpers too) */
    machine_busy: +((m1.busy - cpu0.machine.busy) / (m1.total - cpu0.machine.total)).toFixed(2),
    /** PostgreSQL backends active on this database, on average, and how many of them wait on a lock */
    pg_active_backends: waits.samples ? +(waits.active / waits.samples).toFixed(2) : 0,
    pg_lock_waits: waits.samples ? +(waits.lock / waits.samples).toFixed(2) : 0,
    /** the statements seen waiting on a lock, most often first (share of the waits) */
    pg_waiting_statements: [...waits.statements]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([q, n]) => `${Math.round((100 * n) / waits.lock)} % ${q}`),
  };
}

async function series(setup: string, procs: CliProcess[], funds: Funds) {
  for (const path of ["X-Cashu", "API key"] as const) {
    const pay = payer(funds, path);
    for (const p of procs) for (let i = 0; i < WARMUP; i++) await request(p.url, pay(p.url));
  }
  const rows = [];
  for (const path of ["X-Cashu", "API key"] as const)
    for (const clients of CLIENTS) {
      rows.push(await run(setup, procs, funds, path, clients));
      console.log(JSON.stringify(rows.at(-1)));
    }
  return rows;
}

const load0 = loadavg();
const rows = [
  ...(await series("1 process, SQLite", [sqlite], sqliteFunds)),
  ...(await series("1 process, PostgreSQL", pg, pgFunds)),
];
for (const name of ["pg2", "pg3"]) {
  const p = await startCli([...gatewayArgs(name), "--database-url", dbUrl]);
  pg.push(p);
  await provider(p.url);
}
await new Promise((r) => setTimeout(r, 1500)); // presence: every process sees every node
rows.push(...(await series("3 processes, PostgreSQL", pg, pgFunds)));
const load1 = loadavg();

console.log(`paid requests, ${CLIENTS.join("/")} concurrent clients spread over the processes (one run)`);
console.table(
  rows.map((r) => ({
    setup: r.setup,
    path: r.path,
    clients: r.clients,
    "req/s": r.rps,
    "p50 ms": r.p50_ms,
    "p99 ms": r.p99_ms,
    "gw CPU ms/req": r.gateway_cpu_ms_per_req.join(" + "),
    "pg CPU ms/req": r.postgres_cpu_ms_per_req,
    "gw core use": r.gateway_core_use.join(" "),
    "pg core use": r.postgres_core_use,
    "pg lock waits": r.pg_lock_waits,
    "machine busy": r.machine_busy,
  })),
);

/**
 * What more cores would give: a request costs `server_cpu_ms_per_req` of CPU in total (gateway
 * processes + PostgreSQL) at the highest concurrency; with C cores and no other bound, requests/s ≈
 * C / CPU-seconds per request. PostgreSQL's share says how many of those cores it needs.
 */
const estimates = (["X-Cashu", "API key"] as const).map((path) => {
  const top = Math.max(...CLIENTS);
  const of = (setup: string) => rows.find((r) => r.setup === setup && r.path === path && r.clients === top)!;
  const three = of("3 processes, PostgreSQL");
  const cpuMs = three.server_cpu_ms_per_req;
  const pgShare = three.postgres_cpu_ms_per_req / cpuMs;
  return {
    path,
    sqlite_rps: of("1 process, SQLite").rps,
    pg1_rps: of("1 process, PostgreSQL").rps,
    pg3_rps: three.rps,
    server_cpu_ms_per_req: cpuMs,
    postgres_share: +pgShare.toFixed(2),
    est_rps_per_core: Math.round(1000 / cpuMs),
    est_rps_8_cores: Math.round((8 * 1000) / cpuMs),
    est_pg_cores_at_8: +(8 * pgShare).toFixed(1),
  };
});
console.log(
  `on ${cpus().length} cores shared by every process here, the 3-process figure mostly shows overhead; ` +
    "estimate from its CPU per request (requests/s ≈ cores / CPU-s per request):",
);
console.table(estimates);
const saturated = rows
  .filter((r) => r.clients === Math.max(...CLIENTS))
  .map((r) => {
    const busiest = Math.max(...r.gateway_core_use);
    const bounds = [
      r.pg_lock_waits >= 0.5
        ? `row locks in PostgreSQL (${r.pg_lock_waits} backends waiting on average)`
        : "",
      busiest >= 0.85 ? `a gateway process's event loop (${busiest} of a core)` : "",
      r.postgres_core_use >= 0.85 ? `PostgreSQL's CPU (${r.postgres_core_use} cores)` : "",
      r.machine_busy >= 0.9
        ? `the machine's ${cpus().length} cores (${Math.round(r.machine_busy * 100)} % busy, this bench ${r.bench_core_use} cores of it)`
        : "",
    ].filter(Boolean);
    const what = bounds.join("; ") || "nothing on this box (latency-bound)";
    return { setup: r.setup, path: r.path, saturates_first: what };
  });
console.table(saturated);
console.log(
  `load average before ${load0.map((x) => x.toFixed(2)).join(" ")}, after ${load1.map((x) => x.toFixed(2)).join(" ")}`,
);

saveSection("cluster_scale", {
  clients: CLIENTS,
  model_reply: "scripted node, instant one-word replies, max_tokens 8",
  loadavg_before: load0,
  loadavg_after: load1,
  cores: cpus().length,
  rows,
  estimates,
  saturated,
});

for (const a of agents) await a.close();
for (const p of [...pg, sqlite]) await p.stop();
await admin.end();
await server.stop();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
