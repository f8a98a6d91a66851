/**
 * A proof is spent once: many parallel swaps of the same proofs end with exactly one success, in
 * one mint process and across two processes that share one database file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice, postJson, randomOutputs, rawProofs } from "../support/blinded.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

const PARALLEL = 40;
let a: CliProcess;
let b: CliProcess;

beforeAll(async () => {
  const dir = tempDir();
  a = await startCli(["mint", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
  b = await startCli(["mint", "--port", "0", "--data-dir", dir, "--fake-delay-ms", "20"]);
});
afterAll(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

async function raceSwaps(urls: string[]) {
  const wallet = await newWallet(urls[0]!);
  const proofs = await mintProofs(wallet, 64);
  const keysetId = proofs[0]!.id;
  const inputs = rawProofs(proofs);
  const results = await Promise.all(
    Array.from({ length: PARALLEL }, (_, i) =>
      postJson(`${urls[i % urls.length]}/v1/swap`, { inputs, outputs: randomOutputs(64, keysetId) }),
    ),
  );
  return { results, wallet, proofs };
}

describe("double spend under concurrency", () => {
  it("one process: exactly one of the parallel swaps succeeds, the rest get 11001", async () => {
    const { results } = await raceSwaps([a.url]);
    const ok = results.filter((r) => r.status === 200);
    expect(ok).toHaveLength(1);
    expect(sumAmounts(ok[0]!.body.signatures)).toBe(64);
    for (const r of results.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(400);
      expect(r.body.code).toBe(11001);
    }
  });

  it("two processes on one database: still exactly one success", async () => {
    const { results, wallet, proofs } = await raceSwaps([a.url, b.url]);
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 400 && r.body.code === 11001)).toHaveLength(PARALLEL - 1);
    const states = await wallet.checkProofsStates(proofs);
    expect(states.every((s) => s.state === "SPENT")).toBe(true);
  });

  it("a melt and a swap racing for the same proofs: one wins", async () => {
    const wallet = await newWallet(a.url);
    const proofs = await mintProofs(wallet, 32);
    const invoice = externalInvoice(16);
    const quote = (await postJson(`${a.url}/v1/melt/quote/bolt11`, { request: invoice, unit: "sat" })).body;
    const inputs = rawProofs(proofs);
    const [melt, swap] = await Promise.all([
      postJson(`${a.url}/v1/melt/bolt11`, { quote: quote.quote, inputs }),
      postJson(`${b.url}/v1/swap`, { inputs, outputs: randomOutputs(32, proofs[0]!.id) }),
    ]);
    expect([melt.status, swap.status].filter((s) => s === 200)).toHaveLength(1);
    const loser = melt.status === 200 ? swap : melt;
    expect([11001, 11002]).toContain(loser.body.code);
  });
});
