/** Proofs as cashu-ts and our stores spell them, their sums, and cashu-ts failures as our errors. */
import { Amount, MintOperationError, NetworkError, type Proof } from "@cashu/cashu-ts";
import { EcashError } from "./errors.js";
import type { StoredProof } from "./store.js";

export const toProof = (p: StoredProof): Proof => ({
  id: p.keyset_id,
  amount: Amount.from(p.amount),
  secret: p.secret,
  C: p.c,
  ...(p.dleq ? { dleq: JSON.parse(p.dleq) } : {}),
});

export const toStored = (mint: string, p: Proof): StoredProof => ({
  secret: p.secret,
  mint,
  keyset_id: p.id,
  amount: Number(p.amount.toString()),
  c: p.C,
  dleq: p.dleq ? JSON.stringify(p.dleq) : null,
});

export const sumStored = (ps: { amount: number }[]) => ps.reduce((s, p) => s + p.amount, 0);
export const sumProofs = (ps: Proof[]) => ps.reduce((s, p) => s + Number(p.amount.toString()), 0);

/** Maps a cashu-ts failure talking to a mint onto our ecash errors. */
export function mintFailure(err: unknown, mint: string): EcashError {
  if (err instanceof EcashError) return err;
  if (err instanceof MintOperationError) {
    if (err.code === 11001 || err.code === 11002)
      return new EcashError("token_spent", "cashu token already spent", 402);
    return new EcashError("invalid_token", `the mint refused: ${err.message}`, 400);
  }
  if (err instanceof NetworkError || (err as Error)?.name === "TypeError") {
    return new EcashError("mint_unavailable", `mint ${mint} is unreachable`, 503);
  }
  return new EcashError(
    "invalid_token",
    `could not complete the mint operation: ${(err as Error)?.message ?? err}`,
    400,
  );
}
