/**
 * Write transactions per X-Cashu request, by SQLite file: counts every BEGIN IMMEDIATE
 * transaction and every write statement run outside one (an autocommit write is a transaction of
 * its own, with its own WAL commit) while N requests run one after another through a gateway with
 * its bundled mint in this process. Counted by wrapping better-sqlite3 in this process only.
 *
 *   tsx bench/xcashu-writes.ts            (BENCH_N=… requests)
 */
import { createServer } from "node:http";
import { basename } from "node:path";
import { getEncodedToken } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import express from "express";
import { createGateway } from "../gateway/index.js";
import { createLightningBackend, createMintService } from "../gateway/mint/index.js";
import { closeServer, inProcessFetch, listen, silentLogger } from "../src/shared/index.js";
import { mintProofs, newWallet } from "../test/support/cashu.js";
import { tempDir } from "../test/support/cli-process.js";
import { startAgent } from "../test/support/owlrun-agent.js";
import { saveSection } from "./results.js";

const N = Number(process.env.BENCH_N ?? 40);
const MODEL = "owlrun-bench:tiny";

let counting = false;
const counts = new Map<string, { tx: number; autocommit: number }>();
const bump = (db: Database.Database, kind: "tx" | "autocommit") => {
  if (!counting) return;
  const k = basename(db.name);
  const c = counts.get(k) ?? { tx: 0, autocommit: 0 };
  c[kind]++;
  counts.set(k, c);
};
const proto = Database.prototype as unknown as {
  transaction: (fn: (...a: unknown[]) => unknown) => Record<string, unknown>;
  prepare: (sql: string) => { run: (...a: unknown[]) => unknown; reader: boolean };
};
type Run = (...a: unknown[]) => unknown;
const countTx = (db: Database.Database, run: Run): Run =>
  function (this: unknown, ...a: unknown[]) {
    if (!db.inTransaction) bump(db, "tx");
    return run.apply(this, a);
  };
const countAutocommit = (db: Database.Database, sql: string, run: Run): Run =>
  function (this: unknown, ...a: unknown[]) {
    if (!db.inTransaction && !/^\s*(PRAGMA|BEGIN|COMMIT|ROLLBACK)/i.test(sql)) bump(db, "autocommit");
    return run.apply(this, a);
  };
const transaction = proto.transaction;
proto.transaction = function (this: Database.Database, fn) {
  const t = transaction.call(this, fn) as Record<string, Run> & Run;
  const out = countTx(this, t) as typeof t;
  for (const k of ["deferred", "immediate", "exclusive"]) out[k] = countTx(this, t[k]!);
  return out;
};
const prepare = proto.prepare;
proto.prepare = function (this: Database.Database, sql) {
  const st = prepare.call(this, sql);
  if (!st.reader) st.run = countAutocommit(this, sql, st.run);
  return st;
};

const dir = tempDir("owlrun-bench-writes-");
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
gateway.wallet.connect(mintUrl, { fetch: inProcessFetch(app), sameProcess: true });
const agent = await startAgent(url, { models: [MODEL], reply: ["ok"] });
await new Promise((r) => setTimeout(r, 100));
const wallet = await newWallet(mintUrl);
const purse = await mintProofs(wallet, 8 * (N + 2) + 100);
const split = await wallet.send(
  8 * (N + 2),
  purse,
  {},
  {
    send: { type: "random", denominations: Array<number>(N + 2).fill(8) },
  },
);
const tokens = split.send.map((p) => getEncodedToken({ mint: mintUrl, proofs: [p] }));
const post = (token: string) =>
  fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-cashu": token },
    body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 8 }),
  }).then(async (r) => {
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  });
// Two warm-up requests stock the pool's denominations; then count.
await post(tokens[0]!);
await post(tokens[1]!);
counting = true;
for (let i = 2; i < N + 2; i++) await post(tokens[i]!);
counting = false;
const rows = [...counts].map(([file, c]) => ({
  file,
  transactions_per_request: +(c.tx / N).toFixed(2),
  autocommit_writes_per_request: +(c.autocommit / N).toFixed(2),
}));
const total = rows.reduce((s, r) => s + r.transactions_per_request + r.autocommit_writes_per_request, 0);
console.table(rows);
console.log(`write transactions per X-Cashu request: ${total.toFixed(2)} (${N} requests)`);
saveSection(`xcashu_writes${process.env.BENCH_LABEL ? `_${process.env.BENCH_LABEL}` : ""}`, {
  requests: N,
  rows,
  total_per_request: +total.toFixed(2),
});
await agent.close();
gateway.closeSockets();
await closeServer(server);
await gateway.close();
await mint.close();
