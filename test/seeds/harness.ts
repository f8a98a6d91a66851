/**
 * A devnet for the seed suites, in this process: the gateway with the bundled mint (fake
 * Lightning) on a loopback HTTP server, one provider on the embedded backend (the generated
 * scripted model) dialling it over the Owlrun protocol, and a cashu-ts wallet minting from it.
 * Each seed suite runs its documented examples against it as written.
 */
import { join } from "node:path";
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { type GatewayOptions, type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { type RunningProvider, SCRIPTED_MODEL_ID, startProvider } from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { tempDir } from "../support/cli-process.js";

export const MODEL = SCRIPTED_MODEL_ID;

export interface SeedNet {
  url: string;
  mintUrl: string;
  dir: string;
  gateway: RunningGateway;
  provider: RunningProvider;
  wallet: Wallet;
  /** a token of exactly `amount` sats, cashuA (v3 JSON) or cashuB */
  token(amount: number, format?: "A" | "B"): Promise<string>;
  /** swaps a token into the test purse; answers its value */
  receive(token: string): Promise<number>;
  close(): Promise<void>;
}

export async function startSeedNet(opts: Partial<GatewayOptions> = {}, purseSats = 2000): Promise<SeedNet> {
  const dir = tempDir("owlrun-seed-");
  const gateway = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    offlineBtcUsd: 100_000,
    log: silentLogger,
    port: 0,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 20 }),
      log: silentLogger,
    }),
    ...opts,
  });
  const url = gateway.url;
  const provider = await startProvider({
    gateway: url,
    dataDir: join(dir, "provider"),
    embedded: true,
    // Takes free-tier work too, as the seeds' nodes do: keys without a balance are served.
    freeTierPct: 100,
    log: silentLogger,
  });
  for (let i = 0; !gateway.gateway.dispatcher.models().some((m) => m.model === MODEL); i++) {
    if (i > 600) throw new Error(`${MODEL} never came online`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const mintUrl = `${url}/mint`;
  const wallet = await newWallet(mintUrl);
  let purse: Proof[] = await mintProofs(wallet, purseSats);
  return {
    url,
    mintUrl,
    dir,
    gateway,
    provider,
    wallet,
    async token(amount, format = "B") {
      const { send, keep } = await wallet.send(amount, purse);
      purse = keep;
      if (format === "B") return getEncodedToken({ mint: mintUrl, proofs: send });
      const v3 = {
        token: [{ mint: mintUrl, proofs: send.map((p) => ({ ...p, amount: Number(p.amount.toString()) })) }],
        unit: "sat",
      };
      return `cashuA${Buffer.from(JSON.stringify(v3)).toString("base64url")}`;
    },
    async receive(token) {
      const got = await wallet.receive(token);
      purse.push(...got);
      return sumAmounts(got);
    },
    async close() {
      await provider.close();
      await gateway.close();
    },
  };
}

/** The `data: …` payloads of an SSE body, in order. */
export function sseData(text: string): string[] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("data: "))
    .map((l) => l.slice(6));
}
