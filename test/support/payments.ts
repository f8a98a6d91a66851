/** Shared by the payment suites: a JSON POST, and the gateway's books read after it stopped. */
import { Ledger } from "../../gateway/ledger/index.js";
import { GatewayWallet } from "../../gateway/payments/wallet.js";
import { silentLogger } from "../../src/shared/index.js";

export const postJson = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

export interface Books {
  imbalanceMsat: number;
  /** ecash the ledger says the gateway holds, and what its wallet actually holds */
  ecashMsat: number;
  walletMsat: number;
  /** providers' and the gateway's share of every charge */
  earnedMsat: number;
  /** what prepaid accounts and unused credentials still own */
  owedMsat: number;
  balances: Map<string, number>;
}

/** Reads a stopped gateway's ledger and wallet (`<dataDir>/gateway`). */
export async function readBooks(gatewayDir: string, mintUrl?: string): Promise<Books> {
  const ledger = Ledger.open(gatewayDir);
  const wallet = await GatewayWallet.open(gatewayDir, mintUrl ? [mintUrl] : [], silentLogger);
  try {
    const audit = await ledger.audit();
    let earnedMsat = audit.balances.get("equity:fees") ?? 0;
    let owedMsat = 0;
    for (const [account, msat] of audit.balances) {
      if (account.startsWith("provider:")) earnedMsat += msat;
      if (account.startsWith("user:")) owedMsat += msat;
    }
    return {
      imbalanceMsat: audit.imbalanceMsat,
      ecashMsat: audit.ecashMsat,
      walletMsat: mintUrl ? (await wallet.balance(mintUrl)) * 1000 : 0,
      earnedMsat,
      owedMsat,
      balances: audit.balances,
    };
  } finally {
    await ledger.close();
    await wallet.close();
  }
}
