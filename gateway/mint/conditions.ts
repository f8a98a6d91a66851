/**
 * NUT-10 spending conditions, enforced by the mint on swap and melt inputs: P2PK (NUT-11: SIG_INPUTS
 * and SIG_ALL, `pubkeys` + `n_sigs` multisig, `locktime` + `refund` + `n_sigs_refund`) and HTLC
 * (NUT-14: preimage, optionally with the same signature rules). Pure functions of the request and
 * the clock; every failure is a MintError and nothing is spent.
 *
 * P2BK (NUT-28) needs nothing extra: the sender writes blinded public keys into an ordinary P2PK
 * secret and the receiver signs with the matching blinded private key, so the mint sees plain P2PK.
 */
import secp from "secp256k1";
import { sha256 } from "../../src/shared/ecash/curve.js";
import { MintError, MintErrorCode } from "./errors.js";
import { nut11Digest, verifyNut11Signature } from "./schnorr.js";

/** Per path; NUT-28 allows 11 slots in all, so honest locks stay well below. */
export const MAX_LOCK_KEYS = 16;
/**
 * Signature checks one request may make, summed over its inputs (each ≈ 0.2 ms): bounds what an
 * unauthenticated swap can cost. 1000 single-key inputs need 1000.
 */
export const MAX_SIGNATURE_CHECKS = 2048;

const KNOWN_TAGS = new Set(["sigflag", "n_sigs", "pubkeys", "locktime", "refund", "n_sigs_refund"]);

export interface WellKnownSecret {
  kind: "P2PK" | "HTLC";
  data: string;
  tags: string[][];
}

interface Lock {
  kind: "P2PK" | "HTLC";
  sigAll: boolean;
  hashlock?: Buffer;
  mainKeys: string[];
  nSigs: number;
  /** unix seconds; undefined = permanent */
  locktime?: number;
  refundKeys: string[];
  nSigsRefund: number;
}

interface Witness {
  signatures: string[];
  preimage?: string;
}

export interface SpendInput {
  secret: string;
  C: string;
  witness?: string;
}

export interface SpendTranscript {
  /** outputs of the swap, or the NUT-08 blank outputs of the melt, in request order */
  outputs: { amount: number; B_: string }[];
  /** melt only: the quote being paid (part of the SIG_ALL message) */
  quoteId?: string;
  now: number;
}

const malformed = (why: string) =>
  new MintError(MintErrorCode.ProofVerificationFailed, `Malformed spending condition: ${why}.`);
const unmet = (why: string) => new MintError(MintErrorCode.WitnessMissingOrInvalid, why);

/**
 * The NUT-10 secret of a proof, undefined for an ordinary (random string) secret. A JSON array
 * whose first element is a string claims to be NUT-10: it must then be well formed and of a kind
 * this mint enforces, else it is refused (never treated as anyone-can-spend).
 */
export function parseWellKnownSecret(secret: string): WellKnownSecret | undefined {
  if (!secret.startsWith("[")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || typeof parsed[0] !== "string") return undefined;
  const [kind, body] = parsed as [string, unknown];
  if (kind !== "P2PK" && kind !== "HTLC") {
    throw new MintError(
      MintErrorCode.ProofVerificationFailed,
      `Spending condition ${kind} is not supported.`,
    );
  }
  if (parsed.length !== 2 || !body || typeof body !== "object" || Array.isArray(body))
    throw malformed("secret must be [kind, {nonce, data, tags}]");
  const { nonce, data, tags } = body as Record<string, unknown>;
  if (typeof nonce !== "string" || typeof data !== "string")
    throw malformed("nonce and data must be strings");
  const tagList = tags ?? [];
  if (
    !Array.isArray(tagList) ||
    !tagList.every(
      (t) => Array.isArray(t) && t.length >= 1 && t.every((v) => typeof v === "string" && v.length > 0),
    )
  ) {
    throw malformed("tags must be arrays of one or more non-empty strings");
  }
  return { kind, data, tags: tagList as string[][] };
}

function normalizeKey(hex: string): string {
  const key = hex.toLowerCase();
  if (!/^0[23][0-9a-f]{64}$/.test(key) || !secp.publicKeyVerify(Buffer.from(key, "hex")))
    throw malformed(`${hex.slice(0, 70)} is not a compressed secp256k1 public key`);
  return key;
}

/** Keys of one pathway: valid, at most MAX_LOCK_KEYS, no two with the same x coordinate. */
function keyList(keys: string[], path: string): string[] {
  if (keys.length > MAX_LOCK_KEYS) throw malformed(`more than ${MAX_LOCK_KEYS} ${path} keys`);
  const out = keys.map(normalizeKey);
  if (new Set(out.map((k) => k.slice(2))).size !== out.length) throw malformed(`duplicate ${path} key`);
  return out;
}

function threshold(value: string[] | undefined, keys: number, name: string): number {
  if (!value) return 1;
  if (value.length !== 1 || !/^[1-9][0-9]{0,5}$/.test(value[0]!))
    throw malformed(`${name} must be one positive integer`);
  const n = Number(value[0]);
  if (n > keys) throw malformed(`${name} (${n}) exceeds its ${keys} keys`);
  return n;
}

/** Reads the NUT-11 tags of a P2PK or HTLC secret; malformed locks are refused as unspendable. */
export function parseLock(secret: WellKnownSecret): Lock {
  const tags = new Map<string, string[]>();
  for (const [key, ...values] of secret.tags) {
    if (!KNOWN_TAGS.has(key!)) continue; // free-form tags (NUT-10 extensions) are committed, not enforced
    if (tags.has(key!)) throw malformed(`tag ${key} appears twice`);
    tags.set(key!, values);
  }
  const flag = tags.get("sigflag");
  if (flag && (flag.length !== 1 || (flag[0] !== "SIG_INPUTS" && flag[0] !== "SIG_ALL")))
    throw malformed("sigflag must be SIG_INPUTS or SIG_ALL");

  let hashlock: Buffer | undefined;
  const main: string[] = [];
  if (secret.kind === "HTLC") {
    if (!/^[0-9a-fA-F]{64}$/.test(secret.data)) throw malformed("HTLC data must be a 32-byte hex hash");
    hashlock = Buffer.from(secret.data, "hex");
  } else {
    main.push(secret.data);
  }
  main.push(...(tags.get("pubkeys") ?? []));
  const mainKeys = keyList(main, "main");
  const refundKeys = keyList(tags.get("refund") ?? [], "refund");
  if (secret.kind === "P2PK" && mainKeys.length === 0) throw malformed("P2PK needs a public key");
  const nSigs = threshold(tags.get("n_sigs"), mainKeys.length, "n_sigs");
  if (tags.has("n_sigs_refund") && refundKeys.length === 0)
    throw malformed("n_sigs_refund without refund keys");
  const nSigsRefund = threshold(tags.get("n_sigs_refund"), refundKeys.length, "n_sigs_refund");

  // NUT-11: a locktime that is not a valid unix time leaves the lock permanent.
  const lt = tags.get("locktime")?.[0];
  const locktime = lt && /^[0-9]{1,15}$/.test(lt) && Number(lt) > 0 ? Number(lt) : undefined;
  return {
    kind: secret.kind,
    sigAll: flag?.[0] === "SIG_ALL",
    hashlock,
    mainKeys,
    nSigs,
    locktime,
    refundKeys,
    nSigsRefund,
  };
}

function parseWitness(witness: string | undefined): Witness | undefined {
  if (!witness) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(witness);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== "object") return undefined;
  const { signatures, preimage } = parsed as Record<string, unknown>;
  return {
    signatures: Array.isArray(signatures) ? signatures.filter((s): s is string => typeof s === "string") : [],
    ...(typeof preimage === "string" ? { preimage } : {}),
  };
}

/** Counts signature checks across one request so a hostile witness cannot buy unbounded CPU. */
class Budget {
  private used = 0;
  spend(): void {
    this.used += 1;
    if (this.used > MAX_SIGNATURE_CHECKS)
      throw malformed(`witnesses need more than ${MAX_SIGNATURE_CHECKS} signature checks`);
  }
}

/** How many distinct keys of `keys` signed `digest`, stopping once `needed` is reached. */
function countSigners(
  keys: string[],
  signatures: string[],
  digest: Buffer,
  needed: number,
  budget: Budget,
): number {
  const used = new Set<number>();
  let count = 0;
  for (const key of keys) {
    if (count >= needed) break;
    for (let i = 0; i < signatures.length; i++) {
      if (used.has(i)) continue;
      budget.spend();
      if (verifyNut11Signature(signatures[i]!, digest, key)) {
        used.add(i);
        count++;
        break;
      }
    }
  }
  return count;
}

function checkLock(
  lock: Lock,
  witness: Witness | undefined,
  message: string,
  now: number,
  budget: Budget,
): void {
  const expired = lock.locktime !== undefined && now >= lock.locktime;
  const kind = lock.kind === "HTLC" ? "htlc" : "p2pk";
  const signatures = witness?.signatures ?? [];
  // One signature per signer is all a lock can use; more only buys the sender CPU time.
  const signers = lock.mainKeys.length + lock.refundKeys.length;
  if (signatures.length > signers)
    throw unmet(`Witness carries ${signatures.length} signatures for a ${kind} lock of ${signers} keys.`);
  const digest = signatures.length > 0 ? nut11Digest(message) : Buffer.alloc(0);

  // Main (receiver) pathway: always open.
  let mainFailure: string;
  const preimageOk =
    !lock.hashlock ||
    (!!witness?.preimage &&
      /^[0-9a-fA-F]{64}$/.test(witness.preimage) &&
      sha256(Buffer.from(witness.preimage, "hex")).equals(lock.hashlock));
  if (!preimageOk) {
    mainFailure = witness?.preimage
      ? "HTLC preimage does not match the hash lock"
      : "Witness has no HTLC preimage";
  } else if (lock.mainKeys.length === 0) {
    return; // HTLC without pubkeys: the preimage alone spends
  } else {
    const got = signatures.length ? countSigners(lock.mainKeys, signatures, digest, lock.nSigs, budget) : 0;
    if (got >= lock.nSigs) return;
    mainFailure = signatures.length
      ? `Witness ${kind} signatures: ${got} valid of the ${lock.nSigs} required`
      : `Witness is missing for ${kind} signature`;
  }

  if (expired) {
    // Locktime passed: without refund keys anyone may spend, else the refund keys may.
    if (lock.refundKeys.length === 0) return;
    const got = signatures.length
      ? countSigners(lock.refundKeys, signatures, digest, lock.nSigsRefund, budget)
      : 0;
    if (got >= lock.nSigsRefund) return;
  }
  throw unmet(`${mainFailure}.`);
}

/** NUT-11 SIG_ALL message: secret_i||C_i for every input, amount_j||B_j for every output, then the melt quote id. */
export function sigAllMessage(inputs: SpendInput[], transcript: Omit<SpendTranscript, "now">): string {
  const parts: string[] = [];
  for (const p of inputs) parts.push(p.secret, p.C);
  for (const o of transcript.outputs) parts.push(String(o.amount), o.B_);
  if (transcript.quoteId) parts.push(transcript.quoteId);
  return parts.join("");
}

/**
 * Enforces the spending conditions of every input. With SIG_ALL on any input, all inputs must carry
 * the same kind, data and tags, and the first input's witness signs the whole transaction.
 */
export function verifySpendingConditions(inputs: SpendInput[], transcript: SpendTranscript): void {
  const secrets = inputs.map((p) => parseWellKnownSecret(p.secret));
  if (secrets.every((s) => s === undefined)) return;
  const locks = secrets.map((s) => (s ? parseLock(s) : undefined));
  const budget = new Budget();

  const firstLock = locks[0];
  if (locks.some((l) => l?.sigAll)) {
    const first = secrets[0];
    const sameTerms = (s: WellKnownSecret | undefined) =>
      !!s &&
      !!first &&
      s.kind === first.kind &&
      s.data === first.data &&
      JSON.stringify(s.tags) === JSON.stringify(first.tags);
    if (!firstLock?.sigAll || !secrets.every(sameTerms)) {
      throw unmet("SIG_ALL inputs must all share the same kind, data and tags.");
    }
    const witness = parseWitness(inputs[0]!.witness);
    const unlocked =
      firstLock.locktime !== undefined &&
      transcript.now >= firstLock.locktime &&
      firstLock.refundKeys.length === 0;
    if (!unlocked && (!witness || (witness.signatures.length === 0 && !witness.preimage))) {
      throw unmet("No witness on the first input: SIG_ALL signatures not provided.");
    }
    checkLock(firstLock, witness, sigAllMessage(inputs, transcript), transcript.now, budget);
    return;
  }

  inputs.forEach((p, i) => {
    const lock = locks[i];
    if (lock) checkLock(lock, parseWitness(p.witness), p.secret, transcript.now, budget);
  });
}
