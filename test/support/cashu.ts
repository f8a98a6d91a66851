/** Real cashu-ts wallets for tests, with the `ws` websocket that Node 20 lacks. */
import { randomBytes } from "node:crypto";
import { Amount, injectWebSocketImpl, type Proof, Wallet } from "@cashu/cashu-ts";
import { WebSocket } from "ws";

// ws implements the browser WebSocket API that cashu-ts uses; its typings differ from undici's.
injectWebSocketImpl(WebSocket as unknown as Parameters<typeof injectWebSocketImpl>[0]);

export async function newWallet(mintUrl: string, seed?: Uint8Array): Promise<Wallet> {
  const wallet = new Wallet(mintUrl, { unit: "sat", bip39seed: seed, requireSigDleq: true });
  await wallet.loadMint();
  return wallet;
}

export const randomSeed = () => new Uint8Array(randomBytes(64));

/** Mints `amount` sats through a bolt11 quote that the fake Lightning backend pays by itself. */
export async function mintProofs(wallet: Wallet, amount: number, timeoutMs = 15_000): Promise<Proof[]> {
  const quote = await wallet.createMintQuoteBolt11(amount);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const q = await wallet.checkMintQuoteBolt11(quote.quote);
    if (q.state === "PAID") break;
    if (Date.now() > deadline) throw new Error(`quote ${quote.quote} not paid within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return wallet.mintProofsBolt11(amount, quote.quote);
}

export const sumAmounts = (proofs: Proof[]) =>
  proofs.reduce((s, p) => s + Amount.from(p.amount).toNumber(), 0);
