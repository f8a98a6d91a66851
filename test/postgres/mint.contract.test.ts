/**
 * The mint's store contract, run against SQLite (mint.sqlite) and PostgreSQL. "Two processes" are
 * two stores on one file or two `PgDatabase` pools on one database: a proof is spent once, a quote
 * issued once, a melt begun once, whichever store each racer uses.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MintError, MintErrorCode, PgMintStore, SqliteMintStore } from "../../gateway/mint/index.js";
import type { MintStorage } from "../../gateway/mint/index.js";
import type { PromiseRow, SpentProofRow } from "../../gateway/mint/store.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

interface Pair {
  a: MintStorage;
  b: MintStorage;
  /** whether the two stores stand for two processes for the melt lease (SQLite's is per process) */
  crossProcessLease: boolean;
  close(): Promise<void>;
}

const kinds: [string, () => Promise<Pair>][] = [
  [
    "sqlite",
    async () => {
      const file = join(tempDir(), "mint.sqlite");
      const a = new SqliteMintStore(file);
      const b = new SqliteMintStore(file);
      return { a, b, crossProcessLease: false, close: async () => void (await a.close(), await b.close()) };
    },
  ],
  [
    "postgres",
    async () => {
      const db = await testDatabase("mint");
      const pa = await PgDatabase.open(db.url, { max: 4 });
      const pb = await PgDatabase.open(db.url, { max: 4 });
      const [a, b] = await Promise.all([PgMintStore.open(pa), PgMintStore.open(pb)]);
      return {
        a,
        b,
        crossProcessLease: true,
        async close() {
          await pa.close();
          await pb.close();
          await db.drop();
        },
      };
    },
  ],
];

const hex = (n = 33) => randomBytes(n).toString("hex");
const proof = (amount = 8): SpentProofRow => ({
  y: hex(),
  amount,
  keyset_id: "00aa",
  secret: hex(32),
  c: hex(),
  witness: null,
});
const promise = (amount = 8): PromiseRow => ({
  b_: hex(),
  amount,
  keyset_id: "00aa",
  c_: hex(),
  dleq_e: hex(32),
  dleq_s: hex(32),
});
const nowS = () => Math.floor(Date.now() / 1000);

async function codeOf(p: Promise<unknown>): Promise<number | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof MintError) return err.code;
    throw err;
  }
}

function mintQuote(state: "UNPAID" | "PAID" = "UNPAID") {
  return {
    quote: hex(16),
    method: "bolt11",
    request: `lnbc${hex(8)}`,
    payment_hash: hex(32),
    unit: "sat",
    amount: 64,
    state,
    description: null,
    pubkey: null,
    created_at: nowS(),
    expiry: nowS() + 3600,
  } as const;
}

function meltQuote(internal: string | null = null) {
  return {
    quote: hex(16),
    method: "bolt11",
    request: `lnbc${hex(8)}`,
    payment_hash: hex(32),
    unit: "sat",
    amount: 10,
    fee_reserve: 2,
    created_at: nowS(),
    expiry: nowS() + 3600,
    internal_mint_quote: internal,
  };
}

describe.each(kinds)("mint store contract: %s", (_kind, open) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
  });
  const both = async () => (pair = await open());

  it("a swap spends its inputs and keeps signatures and answer, or writes nothing", async () => {
    const { a, b } = await both();
    const inputs = [proof(), proof()];
    const outs = [promise(), promise()];
    await a.commitSwap(inputs, outs, { key: "k1", body: { signatures: [1] } });
    const states = await b.proofStates([...inputs.map((p) => p.y), hex()]);
    expect([...states.values()].map((s) => s.state)).toEqual(["SPENT", "SPENT"]);
    expect((await b.findPromises(outs.map((o) => o.b_))).get(outs[0]!.b_)).toEqual(outs[0]);
    expect(await b.cachedAnswer("k1")).toEqual({ signatures: [1] });

    // One input spent: 11001, and the fresh input, the outputs and the answer stay unwritten.
    const fresh = proof();
    const newOuts = [promise()];
    expect(await codeOf(b.commitSwap([fresh, inputs[0]!], newOuts, { key: "k2", body: 1 }))).toBe(
      MintErrorCode.ProofsAlreadySpent,
    );
    expect((await a.proofStates([fresh.y])).size).toBe(0);
    expect((await a.findPromises([newOuts[0]!.b_])).size).toBe(0);
    expect(await a.cachedAnswer("k2")).toBeUndefined();

    // An output signed before: 11003, the inputs stay unspent.
    expect(await codeOf(a.commitSwap([fresh], [outs[1]!]))).toBe(MintErrorCode.OutputsAlreadySigned);
    expect((await b.proofStates([fresh.y])).size).toBe(0);
  });

  it("two processes racing to swap the same proofs: exactly one wins, the rest are told 11001", async () => {
    const { a, b } = await both();
    const inputs = [proof(), proof(), proof()];
    const codes = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        codeOf((i % 2 ? a : b).commitSwap(inputs, [promise(), promise()])),
      ),
    );
    expect(codes.filter((c) => c === "ok")).toHaveLength(1);
    expect(codes.filter((c) => c === MintErrorCode.ProofsAlreadySpent)).toHaveLength(23);
  });

  it("a mint quote is paid once and issued once across processes", async () => {
    const { a, b } = await both();
    const q = mintQuote();
    await a.insertMintQuote(q);
    expect(await codeOf(b.issueMintQuote(q.quote, [promise()]))).toBe(MintErrorCode.QuoteNotPaid);
    const paid = await Promise.all([a.markMintQuotePaid(q.quote), b.markMintQuotePaid(q.quote)]);
    expect(paid.filter(Boolean)).toHaveLength(1);
    expect((await b.getMintQuoteByPaymentHash(q.payment_hash))?.state).toBe("PAID");

    const codes = await Promise.all(
      Array.from({ length: 16 }, (_, i) => codeOf((i % 2 ? a : b).issueMintQuote(q.quote, [promise(64)]))),
    );
    expect(codes.filter((c) => c === "ok")).toHaveLength(1);
    expect(codes.filter((c) => c === MintErrorCode.QuoteAlreadyIssued)).toHaveLength(15);
    const row = await a.getMintQuote(q.quote);
    expect(row?.state).toBe("ISSUED");
    expect(row?.issued_at).toBeGreaterThan(0);
    expect(await codeOf(a.issueMintQuote("nope", [promise()]))).toBe(MintErrorCode.BadRequest);
  });

  it("issuing with an output signed before changes nothing: the quote stays PAID", async () => {
    const { a, b } = await both();
    const signed = promise();
    await a.commitSwap([proof()], [signed]);
    const q = mintQuote();
    await a.insertMintQuote(q);
    await a.markMintQuotePaid(q.quote);
    expect(await codeOf(b.issueMintQuote(q.quote, [signed], { key: "m", body: 1 }))).toBe(
      MintErrorCode.OutputsAlreadySigned,
    );
    expect((await a.getMintQuote(q.quote))?.state).toBe("PAID");
    expect(await a.cachedAnswer("m")).toBeUndefined();
  });

  it("a melt is begun once; its pending inputs cannot be swapped; it ends once", async () => {
    const { a, b } = await both();
    const q = meltQuote();
    await a.insertMeltQuote(q);
    const inputs = [proof(8), proof(8)];
    const blanks = [{ B_: hex() }];
    const totals = { inputsTotal: 16, inputFee: 0 };
    const codes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        codeOf((i % 2 ? a : b).beginMelt(q.quote, inputs, blanks, totals, JSON.stringify(blanks))),
      ),
    );
    expect(codes.filter((c) => c === "ok")).toHaveLength(1);
    expect(codes.filter((c) => c === MintErrorCode.QuotePending)).toHaveLength(9);
    expect((await b.getMeltQuote(q.quote))?.state).toBe("PENDING");
    expect((await b.listPendingMelts()).map((m) => m.quote)).toEqual([q.quote]);
    expect((await a.pendingYsOfMelt(q.quote)).sort()).toEqual(inputs.map((p) => p.y).sort());
    expect([...(await a.proofStates(inputs.map((p) => p.y))).values()].map((s) => s.state)).toEqual([
      "PENDING",
      "PENDING",
    ]);
    // Another melt or a swap of the same proofs is refused as pending.
    expect(await codeOf(b.commitSwap([inputs[0]!], [promise()]))).toBe(MintErrorCode.ProofsPending);
    const other = meltQuote();
    await b.insertMeltQuote(other);
    expect(await codeOf(b.beginMelt(other.quote, [inputs[1]!], [], totals, "[]"))).toBe(
      MintErrorCode.ProofsPending,
    );
    expect((await a.getMeltQuote(other.quote))?.state).toBe("UNPAID");

    const change = [{ ...promise(4), b_: blanks[0]!.B_ }];
    const ends = await Promise.all([
      a.completeMelt(q.quote, { preimage: "00", feePaid: 1, change, changeJson: "[]" }),
      b.completeMelt(q.quote, { preimage: "00", feePaid: 1, change, changeJson: "[]" }),
    ]);
    expect(ends.sort()).toEqual(["done", "not_pending"]);
    expect(await b.failMelt(q.quote)).toBe(false);
    const done = await b.getMeltQuote(q.quote);
    expect(done).toMatchObject({ state: "PAID", fee_paid: 1, preimage: "00" });
    expect([...(await b.proofStates(inputs.map((p) => p.y))).values()].map((s) => s.state)).toEqual([
      "SPENT",
      "SPENT",
    ]);
    expect(await a.pendingYsOfMelt(q.quote)).toEqual([]);
    expect((await a.findPromises([blanks[0]!.B_])).size).toBe(1);
    expect(await codeOf(a.beginMelt(q.quote, [proof()], [], totals, "[]"))).toBe(
      MintErrorCode.InvoiceAlreadyPaid,
    );
  });

  it("completion and failure racing: exactly one ends the melt, and the proofs agree with it", async () => {
    const { a, b } = await both();
    for (let round = 0; round < 6; round++) {
      const q = meltQuote();
      await a.insertMeltQuote(q);
      const inputs = [proof(8), proof(8)];
      await a.beginMelt(q.quote, inputs, [], { inputsTotal: 16, inputFee: 0 }, "[]");
      const paid = { preimage: "00", feePaid: 0, change: [], changeJson: "[]" };
      const [x, y, z] = await Promise.all([
        (round % 2 ? a : b).failMelt(q.quote),
        (round % 2 ? b : a).completeMelt(q.quote, paid),
        b.completeMelt(q.quote, paid),
      ]);
      const winners = [x, y === "done", z === "done"].filter(Boolean);
      expect(winners).toHaveLength(1);
      const states = [...(await a.proofStates(inputs.map((p) => p.y))).values()].map((s) => s.state);
      const quote = await b.getMeltQuote(q.quote);
      if (x) {
        expect(quote?.state).toBe("UNPAID");
        expect(states).toEqual([]);
      } else {
        expect(quote?.state).toBe("PAID");
        expect(states).toEqual(["SPENT", "SPENT"]);
      }
    }
  });

  it("a failed melt frees its inputs and its quote for another try", async () => {
    const { a, b } = await both();
    const q = meltQuote();
    await a.insertMeltQuote(q);
    const inputs = [proof(16)];
    await a.beginMelt(q.quote, inputs, [], { inputsTotal: 16, inputFee: 0 }, "[]");
    expect(await b.failMelt(q.quote)).toBe(true);
    expect(await a.failMelt(q.quote)).toBe(false);
    expect(await b.getMeltQuote(q.quote)).toMatchObject({ state: "UNPAID", inputs_total: null });
    expect((await a.proofStates([inputs[0]!.y])).size).toBe(0);
    await b.commitSwap(inputs, [promise(16)]);
    expect(await codeOf(a.beginMelt(q.quote, inputs, [], { inputsTotal: 16, inputFee: 0 }, "[]"))).toBe(
      MintErrorCode.ProofsAlreadySpent,
    );
    expect((await a.getMeltQuote(q.quote))?.state).toBe("UNPAID");
  });

  it("a melt and a swap racing for the same proofs: one wins", async () => {
    const { a, b } = await both();
    for (let round = 0; round < 5; round++) {
      const q = meltQuote();
      await a.insertMeltQuote(q);
      const inputs = [proof(), proof(), proof()];
      const codes = await Promise.all([
        codeOf(a.beginMelt(q.quote, inputs, [], { inputsTotal: 24, inputFee: 0 }, "[]")),
        codeOf(b.commitSwap([...inputs].reverse(), [promise()])),
      ]);
      expect(codes.filter((c) => c === "ok")).toHaveLength(1);
    }
  });

  it("an internal melt whose invoice someone else paid meanwhile completes nothing", async () => {
    const { a, b } = await both();
    const mq = mintQuote();
    await a.insertMintQuote(mq);
    const q = meltQuote(mq.quote);
    await a.insertMeltQuote(q);
    await a.beginMelt(q.quote, [proof(16)], [], { inputsTotal: 16, inputFee: 0 }, "[]");
    await b.markMintQuotePaid(mq.quote);
    expect(await a.completeMelt(q.quote, { preimage: null, feePaid: 0, change: [], changeJson: "[]" })).toBe(
      "internal_already_paid",
    );
    expect((await b.getMeltQuote(q.quote))?.state).toBe("PENDING");
  });

  it("keysets: started at once, one keyset 0; a rotation makes the next the only active one", async () => {
    const { a, b } = await both();
    const idOf = (i: number) => `00${String(i).padStart(14, "0")}`;
    await Promise.all([a.addNextKeyset("sat", 0, idOf, true), b.addNextKeyset("sat", 0, idOf, true)]);
    expect((await b.listKeysets()).map((k) => [k.id, k.active])).toEqual([[idOf(0), 1]]);
    await b.addNextKeyset("sat", 100, idOf, false);
    const rows = await a.listKeysets();
    expect(rows.map((k) => [k.id, k.derivation_index, k.active, k.input_fee_ppk])).toEqual([
      [idOf(0), 0, 0, 0],
      [idOf(1), 1, 1, 100],
    ]);
  });

  it("melt lease: one holder at a time, free again once released", async () => {
    const { a, b, crossProcessLease } = await both();
    const lease = await a.leaseMelt("q1");
    expect(lease).toBeDefined();
    expect(await a.leaseMelt("q1")).toBeUndefined();
    if (crossProcessLease) expect(await b.leaseMelt("q1")).toBeUndefined();
    const other = await a.leaseMelt("q2");
    expect(other).toBeDefined();
    await other!.release();
    await lease!.release();
    const again = await (crossProcessLease ? b : a).leaseMelt("q1");
    expect(again).toBeDefined();
    await again!.release();
  });

  it("prunes unpaid mint quotes past expiry and keeps NUT-19 answers only for their TTL", async () => {
    const { a, b } = await both();
    const unpaid = mintQuote();
    const paid = mintQuote();
    await a.insertMintQuote(unpaid);
    await a.insertMintQuote(paid);
    await a.markMintQuotePaid(paid.quote);
    expect(await b.pruneUnpaidMintQuotes(nowS())).toBe(0);
    expect(await b.pruneUnpaidMintQuotes(nowS() + 7200)).toBe(1);
    expect(await a.getMintQuote(unpaid.quote)).toBeUndefined();
    expect(await a.getMintQuote(paid.quote)).toBeDefined();
    await a.commitSwap([proof()], [promise()], { key: "x", body: { v: 1 } });
    await b.pruneCachedAnswers();
    expect(await b.cachedAnswer("x")).toEqual({ v: 1 });
    await a.deleteCachedAnswer("x");
    expect(await b.cachedAnswer("x")).toBeUndefined();
  });
});

describe("PostgreSQL mint: the master secret", () => {
  it("records the first process's fingerprint; another secret reads back the first", async () => {
    const db = await testDatabase("mint");
    const pa = await PgDatabase.open(db.url, { max: 2 });
    const pb = await PgDatabase.open(db.url, { max: 2 });
    try {
      const [a, b] = await Promise.all([PgMintStore.open(pa), PgMintStore.open(pb)]);
      const got = await Promise.all([a.claimMasterFingerprint("f-a"), b.claimMasterFingerprint("f-b")]);
      expect(got[0]).toBe(got[1]);
      expect(await b.claimMasterFingerprint("f-c")).toBe(got[0]);
    } finally {
      await pa.close();
      await pb.close();
      await db.drop();
    }
  });
});
