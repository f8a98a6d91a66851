/**
 * Costs as the books grow, in one run: for each size (BENCH_SIZES, default 0,100000,1000000) a
 * fresh gateway + bundled mint (composed as `owlrun-mcp gateway` runs them, the mint in-process)
 * whose stores are first populated directly through the stores' own SQLite files (real schemas,
 * indexes and triggers; bulk INSERTs in one transaction each):
 *   ledger        N settled-job transactions (tx + entry + ended hold + empty hold balance), half
 *                 of them earned by the node whose heartbeat is measured; then the running totals
 *                 are rebuilt as an upgraded file would be (user_version 0 → 1)
 *   wallet        N requests of history: N finished counter ranges (flagged resolved, as before)
 *                 and 2N spent proofs; plus min(N, 100k) proofs in the pool (large denominations
 *                 the change never picks)
 *   accounts      min(N, 100k) accounts
 * Then: X-Cashu and API-key requests (p50 latency, process CPU per request), the heartbeat's
 * money numbers (earningsOf: CPU per call), the old and new text of each hot query on the same
 * files (µs per call), file sizes. Everything as ratios to the fresh gateway.
 *
 *   BENCH_SIZES=0,100000 BENCH_SCALE_N=60 tsx bench/scaling.ts
 */
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { getEncodedToken, type Proof } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import { earningsOf, type ProviderDeps } from "../gateway/api/providers.js";
import { startGateway } from "../gateway/index.js";
import { LedgerStore } from "../gateway/ledger/index.js";
import { createBundledMint, createLightningBackend } from "../gateway/mint/index.js";
import { SqliteAccountStore } from "../gateway/payments/accounts.js";
import { EcashStore } from "../src/shared/ecash/index.js";
import { silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { tempDir } from "../test/support/cli-process.js";
import { startAgent } from "../test/support/owlrun-agent.js";
import { pct, saveSection } from "./results.js";

const SIZES = (process.env.BENCH_SIZES ?? "0,100000,1000000").split(",").map(Number);
const K = Number(process.env.BENCH_SCALE_N ?? 60);
const MODEL = "owlrun-bench:tiny";
const HOT = "hot-node";
const DAY = 86_400_000;

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};

/** Wall p50 and process CPU per call of `fn`, run `n` times in sequence. */
async function measure(n: number, fn: () => Promise<unknown>) {
  const wall: number[] = [];
  const c0 = cpuMs();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    wall.push(performance.now() - t0);
  }
  return { p50: pct(wall, 50), cpu: (cpuMs() - c0) / n };
}

/** µs per call of a synchronous query. */
function micro(n: number, fn: () => unknown): number {
  fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - t0) * 1000) / n;
}

function populateLedger(path: string, n: number) {
  const s = new LedgerStore(path);
  const now = Date.now();
  s.db.transaction(() => {
    const tx = s.db.prepare("INSERT INTO ledger_tx (id, kind, ref, created_at) VALUES (?, 'settle', ?, ?)");
    const entry = s.db.prepare(
      "INSERT INTO ledger_entries (tx_id, debit, credit, msat) VALUES (?, ?, ?, 2000)",
    );
    const hold = s.db.prepare(
      "INSERT INTO holds (id, account, msat, state, kind, created_at, updated_at) VALUES (?, 'xcashu:B:http://old', 2000, 'settled', 'xcashu', ?, ?)",
    );
    const bal = s.db.prepare("INSERT INTO balances (account, msat) VALUES (?, 0)");
    for (let i = 1; i <= n; i++) {
      const at = now - Math.floor(Math.random() * 30 * DAY);
      tx.run(i, `old${i}`, at);
      entry.run(i, `hold:old${i}`, i % 2 === 0 ? `provider:${HOT}` : `provider:node${i % 1000}`);
      if (i % 2 === 0) {
        hold.run(`old${i}`, at, at);
        bal.run(`hold:old${i}`);
      }
    }
  })();
  // Raw rows bypassed the running totals: rebuilt at the next open, as an upgraded file is.
  s.db.pragma("user_version = 0");
  s.db.pragma("wal_checkpoint(TRUNCATE)");
  s.close();
}

function populateAccounts(path: string, n: number) {
  const s = new SqliteAccountStore(path);
  s.db.transaction(() => {
    const ins = s.db.prepare("INSERT INTO accounts (id, kind, key_hash, created_at) VALUES (?, 'rc', ?, ?)");
    for (let i = 0; i < n; i++) ins.run(`acct${i}`, randomBytes(16).toString("hex"), Date.now());
  })();
  s.close();
}

function populateWallet(path: string, mint: string, n: number) {
  const s = new EcashStore(path);
  s.db.transaction(() => {
    const res = s.db.prepare(
      "INSERT INTO reservations (mint, keyset_id, start, count, op, created_at, resolved) VALUES (?, '00', ?, 4, ?, ?, 1)",
    );
    const proof = s.db.prepare(
      "INSERT INTO proofs (secret, mint, keyset_id, amount, c, dleq, state, op, created_at) VALUES (?, ?, '00', ?, '02', NULL, ?, NULL, ?)",
    );
    for (let i = 0; i < n; i++) {
      res.run(mint, i * 4, `claim:xcashu:B:old${i}`, Date.now());
      proof.run(`spent-a${i}`, mint, 8, "spent", Date.now());
      proof.run(`spent-b${i}`, mint, 2, "spent", Date.now());
    }
    for (let i = 0; i < Math.min(n, 100_000); i++)
      proof.run(`pool${i}`, mint, 2 ** 20, "available", Date.now());
  })();
  s.close();
}

const mb = (file: string) => {
  let total = 0;
  for (const f of [file, `${file}-wal`]) {
    try {
      total += statSync(f).size;
    } catch {
      /* absent */
    }
  }
  return total / 1e6;
};

async function runSize(n: number) {
  const dir = tempDir("owlrun-bench-scale-");
  const gwDir = join(dir, "gateway");
  const t0 = performance.now();
  if (n > 0) {
    const { mkdirSync } = await import("node:fs");
    mkdirSync(gwDir, { recursive: true });
    populateLedger(join(gwDir, "ledger.sqlite"), n);
    populateAccounts(join(gwDir, "accounts.sqlite"), Math.min(n, 100_000));
  }
  const tOpen = performance.now();
  const gw = await startGateway({
    dataDir: gwDir,
    trustedMints: [],
    port: 0,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    retention: { intervalMs: 0 },
    log: silentLogger,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
  });
  const openMs = performance.now() - tOpen;
  const url = gw.url;
  const mintUrl = `${url}/mint`;
  const walletFile = join(gwDir, "wallet", "wallet.sqlite");
  if (n > 0) populateWallet(walletFile, mintUrl, n);
  const populateS = (performance.now() - t0) / 1000;

  const agent = await startAgent(url, { models: [MODEL], reply: ["ok"] });
  await new Promise((r) => setTimeout(r, 100));
  const client = await newWallet(mintUrl);
  const count = K + 5;
  const keys = Math.ceil((K + 2) / 50) + 1;
  let purse: Proof[] = await mintProofs(client, count * 8 + keys * 500 + 50);
  const apiKeys: string[] = [];
  for (let i = 0; i < keys; i++) {
    const reg = await fetch(`${url}/v1/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const { api_key } = (await reg.json()) as { api_key: string };
    const { send, keep } = await client.send(500, purse);
    purse = keep;
    await fetch(`${url}/v1/balance/topup`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
      body: JSON.stringify({ token: getEncodedToken({ mint: mintUrl, proofs: send }) }),
    });
    apiKeys.push(api_key);
  }
  const split = await client.send(
    8 * count,
    purse,
    {},
    {
      send: { type: "random", denominations: Array<number>(count).fill(8) },
    },
  );
  const tokens = split.send.map((p) => getEncodedToken({ mint: mintUrl, proofs: [p] }));
  const body = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 });
  const post = (headers: Record<string, string>) =>
    fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body,
    }).then(async (r) => {
      if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    });
  let t = 0;
  let k = 0;
  // Warm-up; a pooled connection may have been closed by the server's keep-alive timeout meanwhile.
  const warm = async (fn: () => Promise<void>) => {
    for (let i = 0; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (i >= 2) throw err;
      }
    }
  };
  await warm(() => post({ "x-cashu": tokens[t++]! }));
  await warm(() => post({ authorization: `Bearer ${apiKeys[0]}` }));
  const cashu = await measure(K, () => post({ "x-cashu": tokens[t++]! }));
  const keyed = await measure(K, () =>
    post({ authorization: `Bearer ${apiKeys[Math.floor(k++ / 50) % keys]}` }),
  );
  const deps = { ledger: gw.gateway.ledger, payouts: gw.gateway.payouts } as unknown as ProviderDeps;
  const heartbeat = await measure(200, () => earningsOf(deps, HOT));

  // The hot queries, old text and new, on the same files (separate read/write connections).
  const w = new Database(walletFile);
  const l = new Database(join(gwDir, "ledger.sqlite"));
  const today = Math.floor(Date.now() / DAY) * DAY;
  const q = (db: Database.Database, sql: string) => db.prepare(sql);
  const oldDenoms = q(
    w,
    "SELECT amount, COUNT(*) AS n FROM proofs WHERE mint = ? AND state = 'available' GROUP BY amount ORDER BY amount DESC",
  );
  const newDenoms = q(
    w,
    "SELECT amount, n FROM proof_counts WHERE mint = ? AND state = 'available' AND n > 0 ORDER BY amount DESC",
  );
  // The old plans, forced on today's files with NOT INDEXED (there was no index on op then).
  const oldResolve = q(w, "UPDATE reservations NOT INDEXED SET resolved = 1 WHERE op = ?");
  const newResolve = q(w, "DELETE FROM reservations WHERE op = ?");
  const oldFinish = q(
    w,
    "UPDATE proofs NOT INDEXED SET state = 'spent', op = NULL WHERE op = ? AND state = 'reserved'",
  );
  const newFinish = q(w, "UPDATE proofs SET state = 'spent', op = NULL WHERE op = ? AND state = 'reserved'");
  const oldEarned = q(
    l,
    "SELECT COALESCE(SUM(e.msat), 0) AS v FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id WHERE e.credit = ? AND t.created_at >= ? AND t.kind IN ('settle', 'free_job')",
  );
  const newTotal = q(l, "SELECT msat FROM earnings_total WHERE account = ?");
  const newToday = q(l, "SELECT COALESCE(SUM(msat), 0) FROM earnings_daily WHERE account = ? AND day >= ?");
  const queries = {
    denominations_old_us: micro(20, () => oldDenoms.all(mintUrl)),
    denominations_new_us: micro(200, () => newDenoms.all(mintUrl)),
    resolve_op_old_us: micro(10, () => oldResolve.run("claim:none")),
    resolve_op_new_us: micro(200, () => newResolve.run("claim:none")),
    finish_op_old_us: micro(10, () => oldFinish.run("none")),
    finish_op_new_us: micro(200, () => newFinish.run("none")),
    earnings_old_us: micro(10, () => {
      oldEarned.get(`provider:${HOT}`, 0);
      oldEarned.get(`provider:${HOT}`, today);
    }),
    earnings_new_us: micro(200, () => {
      newTotal.get(`provider:${HOT}`);
      newToday.get(`provider:${HOT}`, today / DAY);
    }),
  };
  w.close();
  l.close();
  const files = {
    ledger_mb: mb(join(gwDir, "ledger.sqlite")),
    wallet_mb: mb(walletFile),
  };
  await agent.close();
  await gw.close();
  return {
    size: n,
    populate_s: +populateS.toFixed(1),
    open_ms: Math.round(openMs),
    xcashu_p50_ms: cashu.p50,
    xcashu_cpu_ms: cashu.cpu,
    apikey_p50_ms: keyed.p50,
    apikey_cpu_ms: keyed.cpu,
    heartbeat_cpu_us: heartbeat.cpu * 1000,
    ...queries,
    ...files,
  };
}

const results = [];
for (const n of SIZES) {
  console.log(`size ${n}: populating and measuring…`);
  results.push(await runSize(n));
}
const fresh = results[0]!;
const r2 = (x: number) => +x.toFixed(2);
const table = results.map((r) => ({
  size: r.size,
  populate_s: r.populate_s,
  open_ms: r.open_ms,
  "xcashu p50 ms (×fresh)": `${r2(r.xcashu_p50_ms)} (×${r2(r.xcashu_p50_ms / fresh.xcashu_p50_ms)})`,
  "xcashu cpu ms (×fresh)": `${r2(r.xcashu_cpu_ms)} (×${r2(r.xcashu_cpu_ms / fresh.xcashu_cpu_ms)})`,
  "apikey p50 ms (×fresh)": `${r2(r.apikey_p50_ms)} (×${r2(r.apikey_p50_ms / fresh.apikey_p50_ms)})`,
  "apikey cpu ms (×fresh)": `${r2(r.apikey_cpu_ms)} (×${r2(r.apikey_cpu_ms / fresh.apikey_cpu_ms)})`,
  "heartbeat cpu µs (×fresh)": `${r2(r.heartbeat_cpu_us)} (×${r2(r.heartbeat_cpu_us / fresh.heartbeat_cpu_us)})`,
  "ledger MB": r2(r.ledger_mb),
  "wallet MB": r2(r.wallet_mb),
}));
console.log(`costs as the books grow (${K} requests per path per size; CPU = whole process per request)`);
console.table(table);
console.log("hot queries, old text vs new on the same populated files (µs per call)");
console.table(
  results.map((r) => ({
    size: r.size,
    denominations: `${r2(r.denominations_old_us)} → ${r2(r.denominations_new_us)}`,
    resolve_op: `${r2(r.resolve_op_old_us)} → ${r2(r.resolve_op_new_us)}`,
    finish_op: `${r2(r.finish_op_old_us)} → ${r2(r.finish_op_new_us)}`,
    earnings: `${r2(r.earnings_old_us)} → ${r2(r.earnings_new_us)}`,
  })),
);
saveSection("scaling", { requests_per_path: K, rows: results });
