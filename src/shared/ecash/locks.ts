/**
 * Locked ecash on the wallet side (NUT-10/11/14, NUT-28 blinded keys): the wallet's own lock key,
 * derived from its seed so a restore keeps it, and the check a receive makes before any swap —
 * which proofs this wallet can unlock (one signature by its key, the HTLC preimage it was given)
 * and a clear refusal for tokens locked to someone else. The mint enforces the rules; this only
 * avoids a doomed swap and says why.
 */
import { createHmac, createHash } from "node:crypto";
import { deriveP2BKSecretKeys, getPubKeyFromPrivKey, type Proof } from "@cashu/cashu-ts";
import { CURVE_N } from "./curve.js";
import { EcashError } from "./errors.js";

export interface LockKey {
  /** hex secret key: signs NUT-11 witnesses */
  privkey: string;
  /** 33-byte compressed hex: what senders lock to */
  pubkey: string;
}

/** The wallet's P2PK key: HMAC-SHA256(seed, "owlrun/p2pk-lock-key/<i>"), the first i giving a valid key. */
export function deriveLockKey(seed: Uint8Array): LockKey {
  for (let i = 0; ; i++) {
    const k = createHmac("sha256", seed).update(`owlrun/p2pk-lock-key/${i}`).digest();
    const n = BigInt(`0x${k.toString("hex")}`);
    if (n > 0n && n < CURVE_N) {
      return { privkey: k.toString("hex"), pubkey: Buffer.from(getPubKeyFromPrivKey(k)).toString("hex") };
    }
  }
}

export interface UnlockPlan {
  /** the proofs to swap, HTLC ones carrying the preimage in their witness */
  proofs: Proof[];
  /** sign with this key (cashu-ts derives NUT-28 blinded keys from it); undefined: nothing to sign */
  privkey?: string;
  locked: boolean;
}

interface Terms {
  kind: string;
  data: string;
  tags: string[][];
}

function termsOf(secret: string): Terms | undefined {
  if (!secret.startsWith("[")) return undefined;
  try {
    const parsed = JSON.parse(secret) as unknown;
    if (!Array.isArray(parsed) || typeof parsed[0] !== "string") return undefined;
    const body = (parsed[1] ?? {}) as { data?: unknown; tags?: unknown };
    return {
      kind: parsed[0],
      data: typeof body.data === "string" ? body.data : "",
      tags: Array.isArray(body.tags) ? (body.tags as string[][]) : [],
    };
  } catch {
    return undefined;
  }
}

const tag = (t: Terms, key: string) => t.tags.find((x) => Array.isArray(x) && x[0] === key)?.slice(1);
const xOnly = (k: string) => k.toLowerCase().slice(-64);
const short = (k: string) => `${k.slice(0, 8)}…${k.slice(-4)}`;

function refuse(message: string): EcashError {
  return new EcashError("invalid_token", message, 400);
}

/**
 * Checks every proof of a token this wallet is about to swap: plain proofs pass, locked ones pass
 * only when `key` (one signature) and `preimage` can unlock them now. Throws a clear EcashError
 * otherwise, before anything is sent to the mint.
 */
export function planUnlock(
  proofs: Proof[],
  opts: { key?: LockKey; preimage?: string },
  now = Math.floor(Date.now() / 1000),
): UnlockPlan {
  let locked = false;
  let needsKey = false;
  const out = proofs.map((p) => {
    const t = termsOf(p.secret);
    if (!t) return p;
    locked = true;
    if (t.kind !== "P2PK" && t.kind !== "HTLC")
      throw refuse(`this token uses a spending condition this wallet does not know (${t.kind})`);
    const main = t.kind === "P2PK" ? [t.data, ...(tag(t, "pubkeys") ?? [])] : (tag(t, "pubkeys") ?? []);
    const refund = tag(t, "refund") ?? [];
    const nSigs = Number(tag(t, "n_sigs")?.[0] ?? 1);
    const nSigsRefund = Number(tag(t, "n_sigs_refund")?.[0] ?? 1);
    const lt = Number(tag(t, "locktime")?.[0]);
    const expired = Number.isSafeInteger(lt) && lt > 0 && now >= lt;
    if (expired && refund.length === 0) return p; // the lock has lapsed: anyone may spend

    // Our key's x coordinate, or with NUT-28 blinding, the blinded keys that are ours.
    const mine = new Set<string>();
    if (opts.key) {
      mine.add(xOnly(opts.key.pubkey));
      const e = (p as Proof & { p2pk_e?: string }).p2pk_e;
      if (e) {
        try {
          for (const k of deriveP2BKSecretKeys(e, opts.key.privkey, [...main, ...refund], t.kind === "P2PK"))
            mine.add(xOnly(Buffer.from(getPubKeyFromPrivKey(Buffer.from(k, "hex"))).toString("hex")));
        } catch {
          // a malformed ephemeral key: then none of the blinded keys is ours
        }
      }
    }
    const ours = (keys: string[]) => keys.some((k) => mine.has(xOnly(k)));

    let why: string;
    const hashOk =
      t.kind !== "HTLC" ||
      (!!opts.preimage &&
        /^[0-9a-fA-F]{64}$/.test(opts.preimage) &&
        createHash("sha256").update(Buffer.from(opts.preimage, "hex")).digest("hex") ===
          t.data.toLowerCase());
    if (!hashOk) {
      why = opts.preimage
        ? "the preimage given does not match this HTLC token's hash lock"
        : "this HTLC token needs its preimage: pass `preimage`";
    } else if (main.length === 0) {
      return withPreimage(p, t, opts.preimage);
    } else if (nSigs > 1 && ours(main)) {
      why = `this token needs ${nSigs} signatures (multisig); this wallet can give one`;
    } else if (ours(main)) {
      needsKey = true;
      return withPreimage(p, t, opts.preimage);
    } else {
      why = `this token is locked to ${main.map(short).join(", ")}, not to this wallet's key${opts.key ? ` (${short(opts.key.pubkey)})` : ""}: only the holder of that key can receive it`;
    }
    if (expired && ours(refund) && nSigsRefund <= 1) {
      needsKey = true;
      return p;
    }
    throw refuse(why);
  });
  return { proofs: out, locked, ...(needsKey && opts.key ? { privkey: opts.key.privkey } : {}) };
}

function withPreimage(p: Proof, t: Terms, preimage?: string): Proof {
  if (t.kind !== "HTLC" || !preimage) return p;
  return { ...p, witness: { preimage: preimage.toLowerCase(), signatures: [] } };
}
