/**
 * BIP-340 Schnorr verification on native libsecp256k1, for NUT-11 witnesses. The `secp256k1` npm
 * binding exposes no Schnorr functions, but BIP-340 verification is only point arithmetic the
 * binding does have: R = s·G − e·P, then R must have an even y and x(R) = r. Verifying needs no
 * secret, so none of it has to be constant-time. Tests pin the BIP-340 vectors and compare with
 * noble's `schnorr.verify` (what cashu-ts signs with).
 */
import secp from "secp256k1";
import { CURVE_N, scalar32, sha256 } from "../../src/shared/ecash/curve.js";

const FIELD_P = 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2fn;
const CHALLENGE_TAG = sha256(Buffer.from("BIP0340/challenge", "utf8"));

const big = (b: Uint8Array): bigint => BigInt(`0x${Buffer.from(b).toString("hex") || "0"}`);

/** The even-y point with x coordinate `x` (BIP-340 lift_x), or undefined when x is not on the curve. */
function liftX(x: Uint8Array): Uint8Array | undefined {
  if (x.length !== 32 || big(x) >= FIELD_P) return undefined;
  const candidate = Buffer.concat([Buffer.from([2]), x]);
  return secp.publicKeyVerify(candidate) ? candidate : undefined;
}

/**
 * True when `signature` (64 bytes) is a valid BIP-340 signature of the 32-byte `message` by the
 * x-only key `xOnlyPubkey` (32 bytes).
 */
export function schnorrVerify(signature: Uint8Array, message: Uint8Array, xOnlyPubkey: Uint8Array): boolean {
  if (signature.length !== 64 || message.length !== 32) return false;
  const P = liftX(xOnlyPubkey);
  if (!P) return false;
  const r = signature.subarray(0, 32);
  const s = signature.subarray(32, 64);
  if (big(r) >= FIELD_P) return false;
  const sNum = big(s);
  if (sNum >= CURVE_N) return false;
  const e = big(sha256(CHALLENGE_TAG, CHALLENGE_TAG, r, xOnlyPubkey, message)) % CURVE_N;

  // R = s·G + (−e)·P; a zero scalar contributes the point at infinity, i.e. nothing.
  const terms: Uint8Array[] = [];
  if (sNum !== 0n) terms.push(secp.publicKeyCreate(Buffer.from(s), true));
  if (e !== 0n) terms.push(secp.publicKeyTweakMul(P, secp.privateKeyNegate(scalar32(e)), true));
  if (terms.length === 0) return false;
  let R: Uint8Array;
  try {
    R = terms.length === 1 ? terms[0]! : secp.publicKeyCombine(terms, true);
  } catch {
    return false; // R is the point at infinity
  }
  return R[0] === 2 && Buffer.compare(Buffer.from(R.subarray(1)), Buffer.from(r)) === 0;
}

/** SHA256 of a NUT-11 message: what its signatures sign (the secret, or the SIG_ALL transcript). */
export const nut11Digest = (message: string): Buffer => sha256(Buffer.from(message, "utf8"));

/** NUT-11 signature check: hex signature over `digest` by a key compared on its x coordinate. */
export function verifyNut11Signature(signatureHex: string, digest: Uint8Array, pubkeyHex: string): boolean {
  if (!/^[0-9a-fA-F]{128}$/.test(signatureHex)) return false;
  return schnorrVerify(Buffer.from(signatureHex, "hex"), digest, Buffer.from(pubkeyHex.slice(-64), "hex"));
}
