/**
 * secp256k1 primitives on native libsecp256k1, shared by the mint (signing, verifying) and the
 * wallets (blinding, unblinding, DLEQ checks). cashu-ts stays the reference: tests compare bytes.
 */
import { createHash } from "node:crypto";
import secp from "secp256k1";

const DOMAIN_H2C = Buffer.from("Secp256k1_HashToCurve_Cashu_", "utf8");
export const CURVE_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

export const sha256 = (...parts: Uint8Array[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

/** NUT-00 hash_to_curve: first valid point 02||SHA256(msg_hash||counter_le32). */
export function hashToCurve(secret: Uint8Array): Uint8Array {
  const msgHash = sha256(DOMAIN_H2C, secret);
  const counter = Buffer.alloc(4);
  for (let i = 0; i < 0x10000; i++) {
    counter.writeUInt32LE(i);
    const candidate = Buffer.concat([Buffer.from([2]), sha256(msgHash, counter)]);
    if (secp.publicKeyVerify(candidate)) return candidate;
  }
  throw new Error("hash_to_curve: no valid point found");
}

const uncompressedHex = (p: Uint8Array): string =>
  Buffer.from(secp.publicKeyConvert(p, false)).toString("hex");

/** e = SHA256 over the ASCII hex of the uncompressed points (NUT-12). */
export function hashE(points: Uint8Array[]): Buffer {
  return sha256(Buffer.from(points.map(uncompressedHex).join(""), "utf8"));
}

export function scalar32(x: bigint): Buffer {
  return Buffer.from(x.toString(16).padStart(64, "0"), "hex");
}

/** B_ = Y + r·G */
export function blind(secret: Uint8Array, r: Uint8Array): Uint8Array {
  return secp.publicKeyCombine([hashToCurve(secret), secp.publicKeyCreate(r, true)], true);
}

/** C = C_ − r·K */
export function unblind(C_: Uint8Array, r: Uint8Array, K: Uint8Array): Uint8Array {
  return secp.publicKeyCombine(
    [C_, secp.publicKeyTweakMul(K, secp.privateKeyNegate(Buffer.from(r)), true)],
    true,
  );
}

/** NUT-12 check of a blind signature: R1 = s·G − e·A, R2 = s·B_ − e·C_, e == hash(R1, R2, A, C_). */
export function verifyDleq(
  dleq: { e: Uint8Array; s: Uint8Array },
  B_: Uint8Array,
  C_: Uint8Array,
  A: Uint8Array,
): boolean {
  try {
    const negE = secp.privateKeyNegate(Buffer.from(dleq.e));
    const R1 = secp.publicKeyCombine(
      [secp.publicKeyCreate(dleq.s, true), secp.publicKeyTweakMul(A, negE, true)],
      true,
    );
    const R2 = secp.publicKeyCombine(
      [secp.publicKeyTweakMul(B_, dleq.s, true), secp.publicKeyTweakMul(C_, negE, true)],
      true,
    );
    return Buffer.compare(hashE([R1, R2, A, C_]), Buffer.from(dleq.e)) === 0;
  } catch {
    return false; // a zero or out-of-range scalar is an invalid proof
  }
}
