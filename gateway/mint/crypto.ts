/**
 * The mint's hot-path curve work (BDHKE signing, proof verification, NUT-12 DLEQ) on native
 * libsecp256k1. cashu-ts's noble implementation is the reference: the tests compare these functions
 * with it byte for byte. Points travel as 33-byte compressed SEC1 buffers.
 */
import { createHmac } from "node:crypto";
import secp from "secp256k1";
import { CURVE_N, hashE, hashToCurve, sha256 } from "../../src/shared/ecash/curve.js";

export { hashE, hashToCurve } from "../../src/shared/ecash/curve.js";

const DOMAIN_DLEQ = Buffer.from("Cashu_DLEQ_R_v1", "utf8");

/** Y of a proof: the key the mint stores spent proofs under. */
export function proofY(secret: string): Uint8Array {
  return hashToCurve(Buffer.from(secret, "utf8"));
}

export function isValidPoint(point: Uint8Array): boolean {
  return point.length === 33 && secp.publicKeyVerify(point);
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return secp.publicKeyCreate(privateKey, true);
}

/** C_ = k·B_ */
export function blindSign(blindedMessage: Uint8Array, privateKey: Uint8Array): Uint8Array {
  return secp.publicKeyTweakMul(blindedMessage, privateKey, true);
}

/** The mint's proof check: k·hash_to_curve(secret) == C. */
export function verifyProof(secret: string, C: Uint8Array, privateKey: Uint8Array): boolean {
  if (!isValidPoint(C)) return false;
  const expected = secp.publicKeyTweakMul(proofY(secret), privateKey, true);
  return Buffer.compare(Buffer.from(expected), Buffer.from(C)) === 0;
}

const uncompressed = (p: Uint8Array): Buffer => Buffer.from(secp.publicKeyConvert(p, false));

/**
 * NUT-12 deterministic nonce: HMAC(SHA256(a), domain||A||B_||C_||ctr) over uncompressed points,
 * retried until 0 < r < n. This reproduces the published NUT-12 vector; cashu-ts 4.8.0 keys the
 * HMAC with `a` itself, which gives different (equally valid) proofs. Wallets only verify them.
 */
function dleqNonce(a: Uint8Array, A: Uint8Array, B_: Uint8Array, C_: Uint8Array): Buffer {
  const base = Buffer.concat([DOMAIN_DLEQ, uncompressed(A), uncompressed(B_), uncompressed(C_)]);
  const key = sha256(a);
  for (let ctr = 0; ctr < 256; ctr++) {
    const r = createHmac("sha256", key)
      .update(base)
      .update(Buffer.from([ctr]))
      .digest();
    const value = BigInt(`0x${r.toString("hex")}`);
    if (value > 0n && value < CURVE_N) return r;
  }
  throw new Error("DLEQ nonce derivation failed");
}

export interface Dleq {
  e: Uint8Array;
  s: Uint8Array;
}

/** DLEQ proof that C_ = a·B_ for the same a as A = a·G; s = r + e·a mod n (scalar ops constant-time in libsecp256k1). */
export function createDleq(B_: Uint8Array, C_: Uint8Array, a: Uint8Array, A: Uint8Array): Dleq {
  const r = dleqNonce(a, A, B_, C_);
  const R1 = secp.publicKeyCreate(r, true);
  const R2 = secp.publicKeyTweakMul(B_, r, true);
  const e = hashE([R1, R2, A, C_]);
  const ea = secp.privateKeyTweakMul(Buffer.from(a), e);
  const s = secp.privateKeyTweakAdd(Buffer.from(ea), r);
  return { e, s: Buffer.from(s) };
}

export interface BlindSignatureBytes {
  C_: Uint8Array;
  dleq: Dleq;
}

/** Signs one blinded message and proves it: what every NUT-12 mint returns per output. */
export function signOutput(
  B_: Uint8Array,
  privateKey: Uint8Array,
  publicKey: Uint8Array,
): BlindSignatureBytes {
  const C_ = blindSign(B_, privateKey);
  return { C_, dleq: createDleq(B_, C_, privateKey, publicKey) };
}

export const toHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const fromHex = (h: string): Buffer => Buffer.from(h, "hex");
