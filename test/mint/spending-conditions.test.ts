/**
 * Locked ecash end to end: the real cashu-ts wallet locks proofs the ways wallets do (P2PK with
 * SIG_INPUTS and SIG_ALL, extra tags, multisig, locktime + refund, P2BK with both kinds of keys,
 * HTLC) and spends them at `owlrun-mcp mint` over HTTP; the wrong key, a missing witness or an
 * early refund is refused with the NUT error the suite expects, and nothing is spent by a refusal.
 */
import {
  createHTLCHash,
  getEncodedToken,
  getPubKeyFromPrivKey,
  MintOperationError,
  P2PKBuilder,
  type Proof,
  sumProofs,
  type Wallet,
} from "@cashu/cashu-ts";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { externalInvoice } from "../support/blinded.js";
import { mintProofs, newWallet } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";

let mint: CliProcess;
let wallet: Wallet;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
function keypair(schnorrStyle = false) {
  const priv = randomBytes(32);
  const pub = hex(getPubKeyFromPrivKey(priv));
  // Nostr/Schnorr keys are x-only: wallets write them with a 02 prefix whatever the y parity.
  return { priv: hex(priv), pub: schnorrStyle ? `02${pub.slice(2)}` : pub };
}

async function mintError(p: Promise<unknown>): Promise<MintOperationError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(MintOperationError);
  return e as MintOperationError;
}

async function states(proofs: Proof[]) {
  return (await wallet.checkProofsStates(proofs)).map((s) => s.state);
}

beforeAll(async () => {
  mint = await startCli([
    "mint",
    "--port",
    "0",
    "--data-dir",
    tempDir(),
    "--fake-delay-ms",
    "50",
    "--input-fee-ppk",
    "100",
  ]);
  wallet = await newWallet(mint.url);
});
afterAll(async () => {
  expect(await mint.stop()).toBe(0);
});

describe("NUT-10/11/14 at the mint", () => {
  it("advertises NUT-10, 11 and 14", async () => {
    const info = (await (await fetch(`${mint.url}/v1/info`)).json()) as { nuts: Record<string, unknown> };
    for (const n of ["10", "11", "14"]) expect(info.nuts[n]).toEqual({ supported: true });
  });

  it("P2PK: the wrong key is refused (20008, witness missing), the right key receives", async () => {
    const alice = keypair();
    const bob = keypair();
    const { send } = await wallet.ops
      .send(64, await mintProofs(wallet, 128))
      .asP2PK({ pubkey: bob.pub })
      .run();
    const token = getEncodedToken({ mint: mint.url, proofs: send });
    const e = await mintError(wallet.receive(token, { privkey: alice.priv }));
    expect(e.code).toBe(20008);
    expect(e.message.toLowerCase()).toMatch(/witness.*p2pk.*signature/);
    expect(new Set(await states(send))).toEqual(new Set(["UNSPENT"]));
    const got = await wallet.receive(token, { privkey: bob.priv });
    expect(sumProofs(got).toNumber()).toBe(63);
    // The witness the spender gave is public now (NUT-07).
    const spent = await wallet.checkProofsStates(send);
    expect(spent[0]!.state).toBe("SPENT");
    expect(JSON.parse(spent[0]!.witness!).signatures).toHaveLength(1);
  });

  it("P2PK SIG_ALL: no witness is refused, the owner's signature over inputs and outputs swaps", async () => {
    const alice = keypair();
    const bob = keypair();
    const p2pk = new P2PKBuilder().addLockPubkey(bob.pub).sigAll().toOptions();
    const { send } = await wallet.ops
      .send(64, await mintProofs(wallet, 128))
      .asP2PK(p2pk)
      .includeFees()
      .run();
    const token = getEncodedToken({ mint: mint.url, proofs: send });
    const txn = await wallet.prepareSwapToReceive(token);
    const e = await mintError(wallet.completeSwap(txn, alice.priv));
    expect(e.code).toBe(20008);
    expect(e.message.toLowerCase()).toMatch(/no witness|signatures not provided/);
    const { keep } = await wallet.completeSwap(txn, bob.priv);
    expect(sumProofs(keep).toNumber()).toBe(64);
  });

  it("P2PK with additional free-form tags spends with the key", async () => {
    const alice = keypair();
    const p2pk = new P2PKBuilder()
      .addLockPubkey(alice.pub)
      .addTags([
        ["e", "abc"],
        ["p", "123"],
      ])
      .addTag("msg", "hello")
      .toOptions();
    const { send } = await wallet.ops
      .send(64, await mintProofs(wallet, 128))
      .asP2PK(p2pk)
      .run();
    const got = await wallet.receive(getEncodedToken({ mint: mint.url, proofs: send }), {
      privkey: alice.priv,
    });
    expect(sumProofs(got).toNumber()).toBe(63);
  });

  it("2-of-2 multisig: one signature is not enough, both are", async () => {
    const a = keypair();
    const b = keypair();
    const p2pk = new P2PKBuilder().addLockPubkey([a.pub, b.pub]).requireLockSignatures(2).toOptions();
    const { send } = await wallet.ops
      .send(32, await mintProofs(wallet, 64))
      .asP2PK(p2pk)
      .run();
    const token = getEncodedToken({ mint: mint.url, proofs: send });
    const e = await mintError(wallet.receive(token, { privkey: a.priv }));
    expect(e.message).toMatch(/1 valid of the 2 required/);
    const got = await wallet.receive(token, { privkey: [a.priv, b.priv] });
    expect(sumProofs(got).toNumber()).toBe(31);
  });

  it("locktime + refund: the refund key is refused before the locktime, accepted after it", async () => {
    const owner = keypair();
    const refund = keypair();
    const lockIn = async (locktime: number) => {
      const p2pk = new P2PKBuilder()
        .addLockPubkey(owner.pub)
        .lockUntil(locktime)
        .addRefundPubkey(refund.pub)
        .toOptions();
      const { send } = await wallet.ops
        .send(16, await mintProofs(wallet, 32))
        .asP2PK(p2pk)
        .run();
      return getEncodedToken({ mint: mint.url, proofs: send });
    };
    const future = await lockIn(Math.floor(Date.now() / 1000) + 3600);
    await mintError(wallet.receive(future, { privkey: refund.priv }));
    const past = await lockIn(Math.floor(Date.now() / 1000) - 60);
    expect(sumProofs(await wallet.receive(past, { privkey: refund.priv })).toNumber()).toBe(15);
    // The owner can always spend, locktime or not.
    expect(sumProofs(await wallet.receive(future, { privkey: owner.priv })).toNumber()).toBe(15);
  });

  it.each([
    ["an ECDSA-style key (02/03 parity)", false],
    ["a Schnorr x-only key written 02…", true],
  ])(
    "P2BK to %s: the mint sees blinded P2PK keys and accepts the blinded signature",
    async (_n, schnorrStyle) => {
      const bob = keypair(schnorrStyle);
      const opts = new P2PKBuilder().addLockPubkey(bob.pub).blindKeys().toOptions();
      const { send } = await wallet.ops
        .send(64, await mintProofs(wallet, 128))
        .asP2PK(opts)
        .run();
      for (const p of send) expect(JSON.parse(p.secret)[1].data).not.toBe(bob.pub);
      const token = getEncodedToken({ mint: mint.url, proofs: send });
      await mintError(wallet.receive(token, { privkey: keypair().priv }));
      expect(sumProofs(await wallet.receive(token, { privkey: bob.priv })).toNumber()).toBe(63);
    },
  );

  it("HTLC: needs the preimage and the receiver's signature", async () => {
    const bob = keypair();
    const { hash, preimage } = createHTLCHash();
    const opts = new P2PKBuilder().addLockPubkey(bob.pub).addHashlock(hash).toOptions();
    const { send } = await wallet.ops
      .send(16, await mintProofs(wallet, 32))
      .asP2PK(opts)
      .run();
    expect(JSON.parse(send[0]!.secret)[0]).toBe("HTLC");
    const withPreimage = (p: Proof[], pre: string) =>
      p.map((x) => ({ ...x, witness: { preimage: pre, signatures: [] } }));
    const e = await mintError(
      wallet.receive(withPreimage(send, hex(randomBytes(32))), { privkey: bob.priv }),
    );
    expect(e.message).toMatch(/preimage does not match/);
    await mintError(wallet.receive(withPreimage(send, preimage)));
    const got = await wallet.receive(withPreimage(send, preimage), { privkey: bob.priv });
    expect(sumProofs(got).toNumber()).toBe(15);
  });

  it("melt with P2PK SIG_INPUTS and SIG_ALL inputs (the quote id is signed)", async () => {
    for (const sigFlag of ["SIG_INPUTS", "SIG_ALL"] as const) {
      const bob = keypair();
      const q = await wallet.createMintQuoteBolt11(50);
      await wallet.on.onceMintPaid(q.quote, { timeoutMs: 10_000 });
      const preview = await wallet.ops.mintBolt11(50, q.quote).asP2PK({ pubkey: bob.pub, sigFlag }).prepare();
      const proofs = await wallet.completeMint(preview);
      const quote = await wallet.createMeltQuoteBolt11(externalInvoice(20));
      const unsigned = await wallet.prepareMelt("bolt11", quote, proofs);
      await mintError(wallet.completeMelt(unsigned));
      expect(new Set(await states(proofs))).toEqual(new Set(["UNSPENT"]));
      const melt = await wallet.prepareMelt("bolt11", quote, proofs);
      const res = await wallet.completeMelt(melt, bob.priv);
      expect(res.quote.state).toBe("PAID");
    }
  });
});
