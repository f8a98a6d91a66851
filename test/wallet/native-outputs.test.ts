/**
 * The native OutputDataCreator produces exactly what cashu-ts's own OutputData does (same NUT-13
 * secrets, same B_, same proofs after unblinding) and refuses a signature with a bad DLEQ.
 */
import { randomBytes } from "node:crypto";
import { Amount, createNewMintKeys, OutputData } from "@cashu/cashu-ts";
import { describe, expect, it } from "vitest";
import { signOutput } from "../../gateway/mint/crypto.js";
import { nativeOutputCreator } from "../../src/shared/ecash/native-outputs.js";

const mintKeys = createNewMintKeys(8, new Uint8Array(randomBytes(32)));
const keyset = {
  id: mintKeys.keysetId,
  keys: Object.fromEntries(
    Object.entries(mintKeys.pubKeys).map(([a, k]) => [a, Buffer.from(k).toString("hex")]),
  ),
};

function sign(B_: string, amount: Amount) {
  const a = amount.toString();
  const { C_, dleq } = signOutput(Buffer.from(B_, "hex"), mintKeys.privKeys[a]!, mintKeys.pubKeys[a]!);
  return {
    id: keyset.id,
    amount,
    C_: Buffer.from(C_).toString("hex"),
    dleq: { e: Buffer.from(dleq.e).toString("hex"), s: Buffer.from(dleq.s).toString("hex") },
  };
}

describe("native output creation", () => {
  it("matches cashu-ts for deterministic (NUT-13) outputs, byte for byte, and unblinds to the same proofs", () => {
    const seed = new Uint8Array(randomBytes(64));
    const ours = nativeOutputCreator.createDeterministicData(77, seed, 5, keyset);
    const ref = OutputData.createDeterministicData(77, seed, 5, keyset);
    expect(ours.map((o) => [o.blindedMessage.amount.toString(), o.blindedMessage.B_])).toEqual(
      ref.map((o) => [o.blindedMessage.amount.toString(), o.blindedMessage.B_]),
    );
    for (let i = 0; i < ours.length; i++) {
      const sig = sign(ours[i]!.blindedMessage.B_, Amount.from(ours[i]!.blindedMessage.amount));
      const a = ours[i]!.toProof(sig, keyset);
      const b = ref[i]!.toProof(sig, keyset);
      expect([a.C, a.secret, a.dleq?.r, a.amount.toString()]).toEqual([
        b.C,
        b.secret,
        b.dleq?.r,
        b.amount.toString(),
      ]);
    }
  });

  it("random outputs unblind to valid proofs, and a tampered DLEQ is refused", () => {
    const [out] = nativeOutputCreator.createRandomData(4, keyset, [4]);
    const sig = sign(out!.blindedMessage.B_, Amount.from(4));
    expect(out!.toProof(sig, keyset).C).toMatch(/^0[23][0-9a-f]{64}$/);
    const bad = {
      ...sig,
      dleq: { ...sig.dleq, s: sig.dleq.s.replace(/.$/, (c) => (c === "0" ? "1" : "0")) },
    };
    expect(() => out!.toProof(bad, keyset)).toThrow(/DLEQ/);
  });
});
