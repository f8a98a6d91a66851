/**
 * The whole life of ecash with the real cashu-ts wallet against `owlrun-mcp mint` run as a child
 * process: mint → send/receive → melt with change → check state → restore from the seed.
 */
import {
  CheckStateEnum,
  getDecodedToken,
  getEncodedToken,
  getTokenMetadata,
  type Proof,
  type Wallet,
} from "@cashu/cashu-ts";
import bolt11 from "bolt11";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice } from "../support/blinded.js";
import { newWallet, randomSeed, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
const seed = randomSeed();
let alice: Wallet;

beforeAll(async () => {
  mint = await startCli(["mint", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "100"]);
  alice = await newWallet(mint.url, seed);
});
afterAll(async () => {
  expect(await mint.stop()).toBe(0);
});

describe("cashu-ts wallet life cycle against the bundled mint", () => {
  let aliceProofs: Proof[] = [];

  it("advertises NUT-04/05 bolt11 sat methods, DLEQ and websockets in /v1/info", async () => {
    const info = (await (await fetch(`${mint.url}/v1/info`)).json()) as any;
    expect(info.version).toMatch(/^owlrun-mint\//);
    expect(info.nuts["4"].methods).toContainEqual(expect.objectContaining({ method: "bolt11", unit: "sat" }));
    expect(info.nuts["5"].methods).toContainEqual(expect.objectContaining({ method: "bolt11", unit: "sat" }));
    expect(info.nuts["12"]).toEqual({ supported: true });
    expect(info.urls).toEqual([mint.url]);
  });

  it("issues a real bolt11 invoice, reports it paid over NUT-17, and mints proofs with DLEQ", async () => {
    const quote = await alice.createMintQuoteBolt11(100);
    expect(quote.state).toBe("UNPAID");
    const decoded = bolt11.decode(quote.request);
    expect(Number(decoded.millisatoshis)).toBe(100_000);
    // The wallet is told the moment the invoice is paid (NUT-17 websocket).
    const paid = await alice.on.onceMintPaid(quote.quote, { timeoutMs: 10_000 });
    expect(paid.state).toBe("PAID");
    aliceProofs = await alice.mintProofsBolt11(100, quote.quote);
    expect(sumAmounts(aliceProofs)).toBe(100);
    for (const p of aliceProofs) expect(p.dleq).toBeDefined();
    // A second mint on the same quote is refused.
    await expect(alice.mintProofsBolt11(100, quote.quote)).rejects.toThrow(/already issued/i);
  });

  it("sends a token (cashuB and cashuA) that another wallet receives exactly once", async () => {
    const bob = await newWallet(mint.url);
    const { send, keep } = await alice.send(30, aliceProofs);
    expect(sumAmounts(send)).toBe(30);
    aliceProofs = keep;
    const token = getEncodedToken({ mint: mint.url, proofs: send });
    expect(token.startsWith("cashuB")).toBe(true);
    expect(getTokenMetadata(token).amount.toNumber()).toBe(30);
    const received = await bob.receive(token);
    expect(sumAmounts(received)).toBe(30);
    await expect(bob.receive(token)).rejects.toThrow(/already spent/i);

    // cashuA (V3 JSON) tokens are plain data: the mint sees the same proofs.
    const { send: send2, keep: keep2 } = await alice.send(10, aliceProofs);
    aliceProofs = keep2;
    const v3 = `cashuA${Buffer.from(
      JSON.stringify({
        token: [{ mint: mint.url, proofs: send2.map((p) => ({ ...p, amount: Number(p.amount) })) }],
        unit: "sat",
      }),
    ).toString("base64url")}`;
    const decoded = getDecodedToken(v3, [send2[0]!.id]);
    expect(sumAmounts(decoded.proofs)).toBe(10);
    expect(sumAmounts(await bob.receive(v3))).toBe(10);
  });

  it("melts to an external invoice with NUT-08 change, and check state reports SPENT", async () => {
    // An invoice from a Lightning node that is not this mint: the mint pays it out.
    {
      const invoice = externalInvoice(20);
      const meltQuote = await alice.createMeltQuoteBolt11(invoice);
      expect(meltQuote.amount.toNumber()).toBe(20);
      expect(meltQuote.fee_reserve.toNumber()).toBeGreaterThan(0);
      const before = sumAmounts(aliceProofs);
      const { send: inputs, keep } = await alice.send(
        meltQuote.amount.toNumber() + meltQuote.fee_reserve.toNumber(),
        aliceProofs,
        { includeFees: true },
      );
      const result = await alice.meltProofsBolt11(meltQuote, inputs);
      expect(result.quote.state).toBe("PAID");
      expect(result.quote.payment_preimage).toMatch(/^[0-9a-f]{64}$/);
      // Fake routing fee is 1 sat of the 2-sat reserve: 1 sat comes back as change.
      const change = sumAmounts(result.change);
      expect(change).toBe(sumAmounts(inputs) - 20 - 1);
      aliceProofs = [...keep, ...result.change];
      expect(sumAmounts(aliceProofs)).toBe(before - 21);

      const states = await alice.checkProofsStates(inputs);
      expect(states.map((s) => s.state)).toEqual(inputs.map(() => CheckStateEnum.SPENT));
      const unspent = await alice.checkProofsStates(aliceProofs);
      expect(unspent.every((s) => s.state === CheckStateEnum.UNSPENT)).toBe(true);

      const again = await alice.createMeltQuoteBolt11(invoice);
      await expect(alice.meltProofsBolt11(again, aliceProofs.slice(0, 1))).rejects.toThrow();
    }
  });

  it("a fresh wallet restores the unspent proofs from the same seed (NUT-09/13)", async () => {
    const restored = await newWallet(mint.url, seed);
    const { proofs } = await restored.batchRestore(100, 100);
    expect(proofs.length).toBeGreaterThan(0);
    const states = await restored.checkProofsStates(proofs);
    const unspent = proofs.filter((_, i) => states[i]!.state === CheckStateEnum.UNSPENT);
    expect(sumAmounts(unspent)).toBe(sumAmounts(aliceProofs));
    expect(new Set(unspent.map((p) => p.secret))).toEqual(new Set(aliceProofs.map((p) => p.secret)));
  });
});
