/**
 * `owlrun-mcp gateway migrate-sqlite`: a real SQLite gateway (child process, bundled mint) takes
 * traffic — X-Cashu requests served by a provider, an rc_ account with a balance, a market task
 * with its escrow locked, change left unfetched, a Lightning top-up left unclaimed — and stops;
 * the command moves it into PostgreSQL; a gateway started with --database-url on the same data
 * dir carries on with every sat where it was. Refusals write nothing: while the SQLite gateway
 * runs, a second run, a tampered SQLite ledger or wallet, and a failure after some stores copied.
 *
 * Needs `npm run build` (the gateway runs from dist/).
 */
import { randomUUID } from "node:crypto";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CheckStateEnum, getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgBroadcastStore } from "../../gateway/broadcasts/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, runCli, startCli, tempDir } from "../support/cli-process.js";
import { expectBooksClosed, readGatewayBooks, sumAccounts } from "../support/money.js";
import { type Agent, register, startAgent } from "../support/owlrun-agent.js";
import { testDatabase } from "../support/postgres.js";

const MODEL = "owlrun-test-scripted:tiny";
const dir = tempDir("owlrun-migrate-");
let target: { url: string; drop(): Promise<void> };
let pg: PgDatabase;
let gw: CliProcess | undefined;
let agent: Agent | undefined;
let port: string;
let mintUrl: string;
let client: Wallet;
let purse: Proof[] = [];
/** what the SQLite gateway left, to find again on PostgreSQL */
const left = {
  rcKey: "",
  rcBalance: 0,
  providerKey: "",
  nodeId: "",
  earnedMsat: 0,
  changeId: "",
  changeSats: 0,
  claimSecret: "",
  taskId: "",
  balances: new Map<string, number>(),
};

async function pay(sats: number): Promise<string> {
  const { send, keep } = await client.send(sats, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

async function api(path: string, key?: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw!.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, any>) : {},
  };
}

const chat = (extra: Record<string, unknown> = {}) => ({
  model: MODEL,
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 8,
  ...extra,
});

/** The PostgreSQL ledger's non-zero balances, read directly (the gateway's tables). */
async function pgLedger(db: PgDatabase) {
  const rows = await db.query<{ account: string; msat: number }>(
    "SELECT account, msat FROM ledger_balances WHERE msat <> 0",
  );
  return new Map(rows.map((r) => [r.account, r.msat]));
}

/** The PostgreSQL books, with the mint (which must be up) asked about every proof of the pool. */
async function pgBooks(db: PgDatabase) {
  const balances = await pgLedger(db);
  let imbalance = 0;
  for (const [account, msat] of balances) imbalance += account.startsWith("asset:") ? msat : -msat;
  const proofs = await db.query<{ secret: string; amount: number; c: string; keyset_id: string }>(
    "SELECT secret, amount, c, keyset_id FROM pool_proofs WHERE state = 'available'",
  );
  const states = await client.checkProofsStates(
    proofs.map((p) => ({ secret: p.secret, amount: p.amount, C: p.c, id: p.keyset_id })),
  );
  const [holds] = await db.query<{ n: number }>(
    "SELECT COUNT(*) AS n FROM ledger_holds WHERE state = 'active'",
  );
  return {
    balances,
    imbalance,
    ecashMsat: sumAccounts({ balances } as never, "asset:ecash:"),
    poolSat: proofs.reduce((s, p) => s + p.amount, 0),
    notUnspent: states.filter((s) => s.state !== CheckStateEnum.UNSPENT).length,
    activeHolds: holds!.n,
  };
}

const migrate = (from: string, url: string) =>
  runCli(["gateway", "migrate-sqlite", "--from", from, "--database-url", url]);

beforeAll(async () => {
  target = await testDatabase("migrate");
  pg = await PgDatabase.open(target.url, { max: 2 });
  gw = await startCli(["gateway", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  port = new URL(gw.url).port;
  mintUrl = `${gw.url}/mint`;
  client = await newWallet(mintUrl);
  purse = await mintProofs(client, 3000);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["hello", " world"] });
  left.providerKey = agent.apiKey;
  left.nodeId = agent.nodeId;
}, 60_000);

afterAll(async () => {
  await agent?.close();
  await gw?.stop();
  await pg?.close();
  await target?.drop();
});

describe("owlrun-mcp gateway migrate-sqlite", () => {
  it("the SQLite gateway takes traffic, and the command refuses while it runs", async () => {
    // X-Cashu, change taken from the response.
    const paid = await api("/v1/chat/completions", undefined, chat(), { "x-cashu": await pay(40) });
    expect(paid.status).toBe(200);
    purse.push(...(await client.receive(paid.headers.get("x-cashu-change")!)));
    // X-Cashu whose change nobody fetches (the header is dropped, GET /v1/cashu/change never called).
    left.changeId = randomUUID();
    const unfetched = await api("/v1/chat/completions", undefined, chat(), {
      "x-cashu": await pay(50),
      "x-owlrun-request-id": left.changeId,
    });
    expect(unfetched.status).toBe(200);
    left.changeSats = 50 - Number(unfetched.headers.get("x-cost-sats") ?? unfetched.body.usage.cost.sats);
    expect(left.changeSats).toBeGreaterThan(0);
    // An rc_ account with a balance, spending some.
    left.rcKey = (await api("/v1/auth/register", undefined, {})).body.api_key;
    expect(left.rcKey).toMatch(/^rc_/);
    expect((await api("/v1/balance/topup", left.rcKey, { token: await pay(600) })).status).toBe(200);
    expect((await api("/v1/chat/completions", left.rcKey, chat())).status).toBe(200);
    // A market task with a quote accepted: its price sits in escrow.
    const worker = (await api("/v1/auth/register", undefined, {})).body.api_key;
    expect((await api("/v1/balance/topup", worker, { token: await pay(100) })).status).toBe(200);
    const task = await api("/v1/market/tasks", left.rcKey, { title: "summarise", budget_sats: 300 });
    expect(task.status).toBe(201);
    left.taskId = task.body.id;
    const quote = await api(`/v1/market/tasks/${left.taskId}/quotes`, worker, { price_sats: 200 });
    expect(quote.status).toBe(201);
    const accepted = await api(
      `/v1/market/tasks/${left.taskId}/quotes/${quote.body.id}/accept`,
      left.rcKey,
      {},
    );
    expect(accepted.body).toMatchObject({ state: "accepted", escrow: "locked" });
    // A Lightning top-up, paid (the fake backend pays in 20 ms) and not claimed.
    const topup = await api("/v1/topup", undefined, { amount_sats: 70 });
    expect(topup.status).toBe(201);
    left.claimSecret = topup.body.claim_secret;
    await new Promise((r) => setTimeout(r, 200));

    left.rcBalance = (await api("/v1/balance", left.rcKey)).body.balance_sats;
    expect(left.rcBalance).toBeGreaterThan(0);
    left.earnedMsat = (await readGatewayBooks(join(dir, "gateway"), mintUrl)).balances.get(
      `provider:${left.nodeId}`,
    )!;
    expect(left.earnedMsat).toBeGreaterThan(0);

    const busy = await migrate(dir, target.url);
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/open in another process: stop the SQLite gateway/);
    expect(await pg.query("SELECT to_regclass('ledger_tx') AS t")).toEqual([{ t: null }]);

    await agent!.close();
    agent = undefined;
    // The books as the SQLite gateway leaves them (read while its mint still answers).
    const books = await readGatewayBooks(join(dir, "gateway"), mintUrl);
    // Closed, but for the change nobody fetched: its proofs are spent here, unspent at the mint.
    expectBooksClosed({ ...books, limboSat: books.limboSat - left.changeSats }, "the SQLite books close");
    left.balances = books.balances;
    expect(await gw!.stop()).toBe(0);
    gw = undefined;
  }, 60_000);

  it("refuses tampered SQLite books, writing nothing", async () => {
    const fresh = await testDatabase("migratebad");
    const check = await PgDatabase.open(fresh.url, { max: 1 });
    try {
      // A sat appears in an account from nowhere: the ledger no longer sums to zero.
      const skewed = tempDir("owlrun-migrate-skewed-");
      cpSync(dir, skewed, { recursive: true });
      const ledger = new Database(join(skewed, "gateway", "ledger.sqlite"));
      ledger.prepare("UPDATE balances SET msat = msat + 1000 WHERE account LIKE 'user:%'").run();
      ledger.close();
      const r1 = await migrate(skewed, fresh.url);
      expect(r1.code).toBe(1);
      expect(r1.stderr).toMatch(/the SQLite ledger does not balance/);
      // A proof gone from the wallet: the books balance but the asset is not the proofs.
      const robbed = tempDir("owlrun-migrate-robbed-");
      cpSync(dir, robbed, { recursive: true });
      const wallet = new Database(join(robbed, "gateway", "wallet", "wallet.sqlite"));
      wallet.exec(
        "DELETE FROM proofs WHERE rowid = (SELECT MIN(rowid) FROM proofs WHERE state = 'available')",
      );
      wallet.close();
      const r2 = await migrate(robbed, fresh.url);
      expect(r2.code).toBe(1);
      expect(r2.stderr).toMatch(/ecash asset \(\d+ msat\) differs from the wallet's proofs/);
      expect(await check.query("SELECT to_regclass('schema_migrations') AS t")).toEqual([{ t: null }]);

      // A failure after the ledger, pool and accounts copied (a broadcast id taken in the target):
      // the whole copy is rolled back, the ledger tables included.
      const store = await PgBroadcastStore.open(check);
      // No broadcast in the source: one in the target makes the counts differ.
      await store.publish({ message: "already here", level: "info" });
      const r3 = await migrate(dir, fresh.url);
      expect(r3.code).toBe(1);
      expect(r3.stderr).toMatch(/broadcasts_messages has 1 rows after the copy, SQLite's broadcasts has 0/);
      expect(await check.query("SELECT to_regclass('ledger_tx') AS t")).toEqual([{ t: null }]);
      expect(await check.query("SELECT to_regclass('pool_proofs') AS t")).toEqual([{ t: null }]);
    } finally {
      await check.close();
      await fresh.drop();
    }
  }, 60_000);

  it("moves the stopped gateway; a second run refuses", async () => {
    const noTarget = await runCli(["gateway", "migrate-sqlite", "--from", dir]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toMatch(/migrate-sqlite needs --database-url/);
    const r = await migrate(dir, target.url);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ledger_tx\s+\d+/);
    expect(r.stdout).toMatch(/pool_proofs\s+\d+/);
    expect(r.stdout).toMatch(/market_tasks\s+1/);
    expect(r.stdout).toMatch(/books: \d+ ledger accounts equal in PostgreSQL and SQLite/);
    expect(await pgLedger(pg)).toEqual(left.balances);

    const again = await migrate(dir, target.url);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already migrated into that database/);
    // Another gateway (another wallet seed) into the same database: refused, naming what is there.
    const otherGateway = tempDir("owlrun-migrate-other-");
    cpSync(dir, otherGateway, { recursive: true });
    writeFileSync(join(otherGateway, "gateway", "wallet", "wallet-seed"), "another gateway's seed\n");
    const other = await migrate(otherGateway, target.url);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/already holds a gateway \(rows in ledger_tx, ledger_balances, pool_proofs/);
    expect(await pgLedger(pg)).toEqual(left.balances);
  }, 60_000);

  it("a gateway on PostgreSQL carries on where the SQLite one stopped", async () => {
    gw = await startCli([
      "gateway",
      "--port",
      port,
      "--data-dir",
      dir,
      "--fake-delay-ms",
      "20",
      "--database-url",
      target.url,
    ]);
    // The account key and its balance.
    expect((await api("/v1/balance", left.rcKey)).body.balance_sats).toBe(left.rcBalance);
    // The unfetched change, still claimable and good at the mint.
    const change = await api(`/v1/cashu/change/${left.changeId}`);
    expect(change.status).toBe(200);
    expect(change.body.change_sats).toBe(left.changeSats);
    expect(sumAmounts(await client.receive(change.body.token))).toBe(left.changeSats);
    // The Lightning top-up paid before the move.
    const claimed = await api("/v1/topup/claim", undefined, { claim_secret: left.claimSecret });
    expect(claimed.body).toMatchObject({ amount_sats: 70, balance_sats: 70 });
    expect((await api("/v1/balance", claimed.body.token)).body.balance_sats).toBe(70);
    // The market task, its escrow still locked.
    expect((await api(`/v1/market/tasks/${left.taskId}`, left.rcKey)).body).toMatchObject({
      state: "accepted",
    });
    // The provider key registers again and its earnings are there.
    expect((await register(gw.url, left.providerKey, left.nodeId, [MODEL])).status).toBe(201);
    agent = await startAgent(
      gw.url,
      { models: [MODEL], reply: ["again"] },
      { apiKey: left.providerKey, nodeId: left.nodeId },
    );
    const earnings = await api("/v1/provider/earnings", left.providerKey);
    expect(earnings.status).toBe(200);
    // New paid requests: X-Cashu with change, and the account key.
    const paid = await api("/v1/chat/completions", undefined, chat(), { "x-cashu": await pay(30) });
    expect(paid.status).toBe(200);
    purse.push(...(await client.receive(paid.headers.get("x-cashu-change")!)));
    expect((await api("/v1/chat/completions", left.rcKey, chat())).status).toBe(200);
    expect((await api("/v1/balance", left.rcKey)).body.balance_sats).toBeLessThan(left.rcBalance);

    // The books close on PostgreSQL.
    const books = await pgBooks(pg);
    expect(books.imbalance).toBe(0);
    expect(books.activeHolds).toBe(0);
    expect(books.ecashMsat).toBe(books.poolSat * 1000);
    expect(books.notUnspent).toBe(0);
    expect(books.balances.get(`provider:${left.nodeId}`)).toBeGreaterThan(left.earnedMsat);
  }, 90_000);
});
