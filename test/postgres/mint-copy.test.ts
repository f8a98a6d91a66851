/**
 * `copyMintFromSqlite`: a mint that ran on mint.sqlite (real wallet traffic: mint, swap, melt with
 * change, plus a melt left PENDING) is copied into PostgreSQL, and a mint started on the database
 * with the same secret file carries on: same keyset, spent proofs stay spent, unspent ones redeem,
 * signatures restore, quotes keep their states. Copying again adds nothing.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Proof, Wallet } from "@cashu/cashu-ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  copyMintFromSqlite,
  createLightningBackend,
  type RunningMint,
  SqliteMintStore,
  startMintServer,
} from "../../gateway/mint/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { externalInvoice, postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { newWallet, randomSeed, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const startMint = (dataDir: string, database?: PgDatabase) =>
  startMintServer({
    dataDir: join(dataDir, "mint"),
    database,
    lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
    port: 0,
    log: silentLogger,
  });

let db: { url: string; drop(): Promise<void> };
let pg: PgDatabase;
const dir = tempDir();
const seed = randomSeed();
let keysetId: string;
let spent: Proof[];
let kept: Proof[];
/** every proof the wallet ever held, and its state at the SQLite mint before the copy */
let all: Proof[];
let statesBefore: string[];
let issuedQuote: string;
let paidMelt: string;
const pendingMelt = { quote: "pending-melt", y: "02".padEnd(66, "a") };

beforeAll(async () => {
  db = await testDatabase("mintcopy");
  pg = await PgDatabase.open(db.url, { max: 4 });
  const mint = await startMint(dir);
  try {
    const wallet: Wallet = await newWallet(mint.url, seed);
    keysetId = wallet.keysetId;
    const quote = await wallet.createMintQuoteBolt11(200);
    issuedQuote = quote.quote;
    while ((await wallet.checkMintQuoteBolt11(quote.quote)).state !== "PAID")
      await new Promise((r) => setTimeout(r, 20));
    const minted = await wallet.mintProofsBolt11(200, quote.quote);
    const { keep, send } = await wallet.send(50, minted);
    const melt = await wallet.createMeltQuoteBolt11(externalInvoice(20));
    paidMelt = melt.quote;
    const melted = await wallet.meltProofsBolt11(melt, send);
    expect(melted.quote.state).toBe("PAID");
    kept = [...keep, ...melted.change];
    all = [...minted, ...send, ...kept];
    statesBefore = (await wallet.checkProofsStates(all)).map((s) => s.state);
    spent = all.filter((_, i) => statesBefore[i] === "SPENT");
    expect(spent.length).toBeGreaterThan(0);
    // A melt the crash left PENDING, written through the store.
    const store = new SqliteMintStore(join(dir, "mint", "mint.sqlite"));
    await store.insertMeltQuote({
      quote: pendingMelt.quote,
      method: "bolt11",
      request: externalInvoice(5),
      payment_hash: "ab".repeat(32),
      unit: "sat",
      amount: 5,
      fee_reserve: 1,
      created_at: 1,
      expiry: 2,
      internal_mint_quote: null,
    });
    await store.beginMelt(
      pendingMelt.quote,
      [{ y: pendingMelt.y, amount: 8, keyset_id: keysetId, secret: "s", c: "c", witness: null }],
      [],
      { inputsTotal: 8, inputFee: 0 },
      "[]",
    );
    await store.close();
  } finally {
    await mint.close();
  }
}, 60_000);

afterAll(async () => {
  await pg.close();
  await db.drop();
});

describe("copying the mint from SQLite into PostgreSQL", () => {
  let running: RunningMint | undefined;
  afterAll(async () => {
    await running?.close();
  });

  it("copies every row, twice without harm, and the mint carries on from PostgreSQL", async () => {
    const counts = await copyMintFromSqlite(dir, pg);
    expect(counts).toMatchObject({ keysets: 1, mint_quotes: 1, melt_quotes: 2, proofs_pending: 1 });
    expect(counts.proofs_spent).toBe(spent.length);
    expect(counts.promises).toBeGreaterThan(0);
    expect(counts.cached_responses).toBeGreaterThan(0);
    const again = await copyMintFromSqlite(dir, pg);
    expect(again).toEqual(counts);
    const [row] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM mint_proofs");
    expect(row?.n).toBe(counts.proofs_spent + counts.proofs_pending);

    const copiedPending = await pg.query(
      "SELECT p.state, q.state AS quote_state FROM mint_proofs p JOIN mint_melt_quotes q ON q.quote = p.melt_quote WHERE p.y = $1",
      [pendingMelt.y],
    );
    expect(copiedPending).toEqual([{ state: "PENDING", quote_state: "PENDING" }]);

    running = await startMint(dir, pg);
    const wallet = await newWallet(running.url, seed);
    expect(wallet.keysetId).toBe(keysetId);
    expect(((await (await fetch(`${running.url}/v1/keysets`)).json()) as any).keysets).toHaveLength(1);
    // Spent stays spent.
    expect((await wallet.checkProofsStates(all)).map((s) => s.state)).toEqual(statesBefore);
    const swapSpent = await postJson(`${running.url}/v1/swap`, {
      inputs: rawProofs(spent.slice(0, 1)),
      outputs: randomOutputs(Number(spent[0]!.amount.toString()), keysetId),
    });
    expect(swapSpent.body.code).toBe(11001);
    const pending = await postJson(`${running.url}/v1/checkstate`, { Ys: [pendingMelt.y] });
    // The copied PENDING melt was recovered at start: the fake node never paid it, so its proof is free.
    expect(pending.body.states[0].state).toBe("UNSPENT");
    expect((await wallet.checkMeltQuoteBolt11(pendingMelt.quote)).state).toBe("UNPAID");
    // Quotes keep their states.
    expect((await wallet.checkMintQuoteBolt11(issuedQuote)).state).toBe("ISSUED");
    expect((await wallet.checkMeltQuoteBolt11(paidMelt)).state).toBe("PAID");
    // Every signature restores (NUT-09) exactly as SQLite kept it.
    const signed = await pg.query<{ b_: string; amount: number; keyset_id: string; c_: string }>(
      "SELECT b_, amount, keyset_id, c_ FROM mint_promises ORDER BY b_",
    );
    expect(signed).toHaveLength(counts.promises);
    const restored = await postJson(`${running.url}/v1/restore`, {
      outputs: signed.map((p) => ({ amount: p.amount, id: p.keyset_id, B_: p.b_ })),
    });
    expect(restored.body.signatures.map((s: { C_: string }) => s.C_)).toEqual(signed.map((p) => p.c_));
    // (a fresh wallet: the seeded one would reuse outputs the copied promises already signed)
    const received = await (
      await newWallet(running.url)
    ).receive({ mint: running.url, proofs: kept, unit: "sat" } as any);
    expect(sumAmounts(received)).toBe(sumAmounts(kept));
  });

  it("refuses a database begun with another master secret", async () => {
    const other = tempDir();
    mkdirSync(join(other, "mint"), { recursive: true });
    copyFileSync(join(dir, "mint", "mint.sqlite"), join(other, "mint", "mint.sqlite"));
    writeFileSync(join(other, "mint", "master-secret"), `${"11".repeat(32)}\n`, { mode: 0o600 });
    await expect(copyMintFromSqlite(other, pg)).rejects.toThrow(/master-secret/);
  });

  it("a data dir without a mint copies nothing", async () => {
    const counts = await copyMintFromSqlite(tempDir(), pg);
    expect(Object.values(counts).every((n) => n === 0)).toBe(true);
  });
});
