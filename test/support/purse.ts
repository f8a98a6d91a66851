/**
 * A cashu-ts wallet funded from a mint (fake Lightning pays the quote), cutting tokens of exact
 * amounts from one purse. One send at a time: two concurrent sends would spend the same proofs.
 */
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { mintProofs, newWallet, sumAmounts } from "./cashu.js";

export interface Purse {
  wallet: Wallet;
  mintUrl: string;
  /** a fresh token (cashuB) of exactly `sats` from the purse */
  token(sats: number): Promise<string>;
  /** receives a token back into the purse; returns its value */
  receive(token: string): Promise<number>;
}

export async function fundedPurse(mintUrl: string, sats: number): Promise<Purse> {
  const wallet = await newWallet(mintUrl);
  let proofs: Proof[] = await mintProofs(wallet, sats);
  return {
    wallet,
    mintUrl,
    async token(amount) {
      const { send, keep } = await wallet.send(amount, proofs);
      proofs = keep;
      return getEncodedToken({ mint: mintUrl, proofs: send });
    },
    async receive(token) {
      const got = await wallet.receive(token);
      proofs.push(...got);
      return sumAmounts(got);
    },
  };
}
