/**
 * NUT-10/11/14 spending conditions on the mint side: the NUT-11 spec vectors (they include the
 * NUT-14 HTLC ones), BIP-340 on native libsecp256k1 against the BIP vectors and cashu-ts's noble
 * signer, and a property: a locked proof never passes without a witness made by its keys.
 */
import { createHash, randomBytes } from "node:crypto";
import { getPubKeyFromPrivKey, schnorrSignMessage } from "@cashu/cashu-ts";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  MAX_SIGNATURE_CHECKS,
  type SpendInput,
  sigAllMessage,
  verifySpendingConditions,
} from "../../gateway/mint/conditions.js";
import { MintError } from "../../gateway/mint/index.js";
import { nut11Digest, schnorrVerify, verifyNut11Signature } from "../../gateway/mint/schnorr.js";
import vectors from "./fixtures/nut11-vectors.json" with { type: "json" };

const now = Math.floor(Date.now() / 1000);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const sha256hex = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

type VectorRequest = {
  inputs?: SpendInput[];
  outputs?: { amount: number; B_: string }[];
  quote?: string;
} & Partial<SpendInput>;

function check(kind: string, req: VectorRequest): void {
  if (kind === "proof") {
    verifySpendingConditions([req as SpendInput], { outputs: [], now });
    return;
  }
  verifySpendingConditions(req.inputs!, {
    outputs: req.outputs ?? [],
    ...(kind === "melt" ? { quoteId: req.quote } : {}),
    now,
  });
}

describe("BIP-340 verification on native libsecp256k1", () => {
  // bitcoin/bips bip-0340/test-vectors.csv, rows 0 and 1
  const rows = [
    {
      pk: "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9",
      msg: "00".repeat(32),
      sig: "e907831f80848d1069a5371b402410364bdf1c5f8307b0084c55f1ce2dca821525f66a4a85ea8b71e482a74f382d2ce5ebeee8fdb2172f477df4900d310536c0",
    },
    {
      pk: "dff1d77f2a671c5f36183726db2341be58feae1da2deced843240f7b502ba659",
      msg: "243f6a8885a308d313198a2e03707344a4093822299f31d0082efa98ec4e6c89",
      sig: "6896bd60eeae296db48a229ff71dfe071bde413e6d43f917dc8dcf8c78de33418906d11ac976abccb20b091292bff4ea897efcb639ea871cfa95f6de339e4b0a",
    },
  ];
  it.each(rows)("accepts the published vector for $pk", ({ pk, msg, sig }) => {
    const b = (h: string) => Buffer.from(h, "hex");
    expect(schnorrVerify(b(sig), b(msg), b(pk))).toBe(true);
    const flipped = b(sig);
    flipped[40]! ^= 1;
    expect(schnorrVerify(flipped, b(msg), b(pk))).toBe(false);
    const otherMsg = b(msg);
    otherMsg[0]! ^= 1;
    expect(schnorrVerify(b(sig), otherMsg, b(pk))).toBe(false);
  });

  it("rejects r ≥ p, s ≥ n and keys off the curve", () => {
    const { pk, msg, sig } = rows[0]!;
    const b = (h: string) => Buffer.from(h, "hex");
    expect(schnorrVerify(b("ff".repeat(32) + sig.slice(64)), b(msg), b(pk))).toBe(false);
    expect(schnorrVerify(b(sig.slice(0, 64) + "ff".repeat(32)), b(msg), b(pk))).toBe(false);
    // x = 5 is not on secp256k1 (BIP-340 vector 5's point of failure)
    expect(schnorrVerify(b(sig), b(msg), b(`${"00".repeat(31)}05`))).toBe(false);
  });

  it("agrees with cashu-ts (noble) on random keys, messages and tampering", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.string(),
        fc.boolean(),
        (k, m, tamper) => {
          const priv = hex(k);
          let pub: string;
          try {
            pub = hex(getPubKeyFromPrivKey(k));
          } catch {
            return; // zero or ≥ n: not a key
          }
          const sig = schnorrSignMessage(m, priv);
          const used = tamper ? `${m}x` : m;
          expect(verifyNut11Signature(sig, nut11Digest(used), pub)).toBe(!tamper);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe("NUT-11 / NUT-14 spec vectors", () => {
  it("builds the SIG_ALL swap message and digest of the spec", () => {
    const { request, message, sha256 } = vectors.sigAllSwapDigest;
    const msg = sigAllMessage(request.inputs, { outputs: request.outputs });
    expect(msg).toBe(message);
    expect(sha256hex(msg)).toBe(sha256);
  });

  it("builds the SIG_ALL melt message (with the quote id) of the spec", () => {
    const { request, sha256 } = vectors.sigAllMeltDigest;
    expect(
      sha256hex(sigAllMessage(request.inputs, { outputs: request.outputs, quoteId: request.quote })),
    ).toBe(sha256);
  });

  it.each(vectors.cases)("$kind: $name → valid=$valid", ({ kind, valid, request }) => {
    if (valid) {
      expect(() => check(kind, request as VectorRequest)).not.toThrow();
    } else {
      expect(() => check(kind, request as VectorRequest)).toThrow(MintError);
    }
  });

  it("HTLC: the NUT-14 preimage/hash pair unlocks, another preimage does not", () => {
    const secret = JSON.stringify([
      "HTLC",
      { nonce: "00", data: "ec4916dd28fc4c10d78e287ca5d9cc51ee1ae73cbfde08c6b37324cbfaac8bc5" },
    ]);
    const C = "02698c4e2b5f9534cd0687d87513c759790cf829aa5739184a3e3735471fbda904";
    const spend = (preimage?: string) =>
      verifySpendingConditions(
        [{ secret, C, ...(preimage ? { witness: JSON.stringify({ preimage }) } : {}) }],
        { outputs: [], now },
      );
    expect(() => spend(`${"00".repeat(31)}01`)).not.toThrow();
    expect(() => spend(`${"00".repeat(31)}02`)).toThrow(/preimage does not match/);
    expect(() => spend()).toThrow(/no HTLC preimage/);
  });
});

describe("malformed locks are refused, not treated as anyone-can-spend", () => {
  const key = hex(getPubKeyFromPrivKey(randomBytes(32)));
  const C = key;
  const spend = (body: unknown) =>
    verifySpendingConditions([{ secret: JSON.stringify(body), C }], { outputs: [], now });
  it.each([
    ["an unknown kind", ["NOPE", { nonce: "1", data: key }]],
    [
      "a duplicate tag",
      [
        "P2PK",
        {
          nonce: "1",
          data: key,
          tags: [
            ["n_sigs", "1"],
            ["n_sigs", "1"],
          ],
        },
      ],
    ],
    ["n_sigs above the key count", ["P2PK", { nonce: "1", data: key, tags: [["n_sigs", "2"]] }]],
    ["n_sigs zero", ["P2PK", { nonce: "1", data: key, tags: [["n_sigs", "0"]] }]],
    [
      "a duplicate key (same x)",
      ["P2PK", { nonce: "1", data: key, tags: [["pubkeys", `03${key.slice(2)}`]] }],
    ],
    ["a bad sigflag", ["P2PK", { nonce: "1", data: key, tags: [["sigflag", "SIG_NONE"]] }]],
    ["a non-string tag value", ["P2PK", { nonce: "1", data: key, tags: [["locktime", 1]] }]],
    ["a data key off the curve", ["P2PK", { nonce: "1", data: `02${"00".repeat(31)}05` }]],
    [
      "n_sigs_refund without refund keys",
      ["P2PK", { nonce: "1", data: key, tags: [["n_sigs_refund", "1"]] }],
    ],
  ])("%s", (_name, body) => {
    expect(() => spend(body)).toThrow(MintError);
  });

  it("refuses more signatures than the lock has keys", () => {
    const witness = JSON.stringify({ signatures: ["ab".repeat(64), "cd".repeat(64)] });
    const secret = JSON.stringify(["P2PK", { nonce: "1", data: key }]);
    expect(() => verifySpendingConditions([{ secret, C, witness }], { outputs: [], now })).toThrow(
      /2 signatures for a p2pk lock of 1 keys/,
    );
  });

  it("bounds the signature checks one request can buy", () => {
    // 16 keys, the only valid signature is the last key's and comes last: 256 checks per input.
    const privs = Array.from({ length: 16 }, () => randomBytes(32));
    const pubs = privs.map((p) => hex(getPubKeyFromPrivKey(p)));
    const inputs = Array.from({ length: Math.ceil(MAX_SIGNATURE_CHECKS / 256) + 1 }, (_, i) => {
      const secret = JSON.stringify([
        "P2PK",
        { nonce: String(i), data: pubs[0], tags: [["pubkeys", ...pubs.slice(1)]] },
      ]);
      const signatures = [
        ...Array.from({ length: 15 }, () => "ab".repeat(64)),
        schnorrSignMessage(secret, hex(privs[15]!)),
      ];
      return { secret, C, witness: JSON.stringify({ signatures }) };
    });
    expect(() => verifySpendingConditions(inputs.slice(0, 2), { outputs: [], now })).not.toThrow();
    expect(() => verifySpendingConditions(inputs, { outputs: [], now })).toThrow(/signature checks/);
  });
});

describe("property: a locked proof is never spendable without its witness", () => {
  const keyArb = fc
    .uint8Array({ minLength: 32, maxLength: 32 })
    .filter((k) => k.some((x) => x !== 0))
    .map((k) => hex(k));
  const pub = (priv: string) => hex(getPubKeyFromPrivKey(Buffer.from(priv, "hex")));

  it("P2PK/HTLC with keys: no witness, strangers' signatures, or a wrong preimage never unlock before the locktime", () => {
    fc.assert(
      fc.property(
        fc.array(keyArb, { minLength: 1, maxLength: 3 }),
        fc.array(keyArb, { minLength: 0, maxLength: 2 }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom("none", "strangers", "too-few", "wrong-preimage"),
        (owners, strangers, htlc, sigAll, attack) => {
          const ownerPubs = [...new Set(owners.map(pub).map((k) => k.slice(2)))].map((x) =>
            owners.map(pub).find((k) => k.slice(2) === x),
          ) as string[];
          const ownerPrivs = ownerPubs.map((p) => owners.find((o) => pub(o) === p)!);
          const preimage = hex(randomBytes(32));
          const hash = createHash("sha256").update(Buffer.from(preimage, "hex")).digest("hex");
          const tags: string[][] = [["locktime", String(now + 3600)]];
          if (sigAll) tags.push(["sigflag", "SIG_ALL"]);
          const n = ownerPubs.length;
          if (n > 1) tags.push(["n_sigs", String(n)]);
          const body = htlc
            ? { nonce: hex(randomBytes(8)), data: hash, tags: [...tags, ["pubkeys", ...ownerPubs]] }
            : {
                nonce: hex(randomBytes(8)),
                data: ownerPubs[0],
                tags: n > 1 ? [...tags, ["pubkeys", ...ownerPubs.slice(1)]] : tags,
              };
          const secret = JSON.stringify([htlc ? "HTLC" : "P2PK", body]);
          const C = ownerPubs[0]!;
          const outputs = [{ amount: 1, B_: pub(hex(randomBytes(32))) }];
          const message = sigAll ? sigAllMessage([{ secret, C }], { outputs }) : secret;
          const sign = (privs: string[]) => privs.map((p) => schnorrSignMessage(message, p));
          const witnessFor: Record<string, object | undefined> = {
            none: undefined,
            strangers: { signatures: sign(strangers.filter((s) => !ownerPrivs.includes(s))), preimage },
            "too-few": { signatures: sign(ownerPrivs.slice(1)), preimage },
            "wrong-preimage": htlc
              ? { signatures: sign(ownerPrivs), preimage: hex(randomBytes(32)) }
              : { signatures: [] },
          };
          const w = witnessFor[attack];
          const attempt = () =>
            verifySpendingConditions([{ secret, C, ...(w ? { witness: JSON.stringify(w) } : {}) }], {
              outputs,
              now,
            });
          expect(attempt).toThrow(MintError);
          // …and the owners' own witness does unlock it.
          const good = { signatures: sign(ownerPrivs), ...(htlc ? { preimage } : {}) };
          expect(() =>
            verifySpendingConditions([{ secret, C, witness: JSON.stringify(good) }], { outputs, now }),
          ).not.toThrow();
        },
      ),
      { numRuns: 40 },
    );
  });
});
