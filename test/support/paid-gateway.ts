/**
 * A real gateway in this process for the API suites: the bundled mint (fake Lightning) at /mint on
 * the same server, a fixed BTC rate, a cashu-ts wallet funded from that mint, and helpers to cut
 * tokens and take change back. Scripted Owlrun nodes connect to it over the real protocol.
 */
import { join } from "node:path";
import type { Wallet } from "@cashu/cashu-ts";
import { type GatewayOptions, type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "./cli-process.js";
import { type AgentScript, type OwlrunAgent, startAgent } from "./owlrun-agent.js";
import { fundedPurse } from "./purse.js";

export interface PaidGateway {
  url: string;
  mintUrl: string;
  running: RunningGateway;
  wallet: Wallet;
  /** a fresh token of exactly `sats` from the funded purse */
  token(sats: number): Promise<string>;
  /** receives a change token back into the purse; returns its value */
  receive(token: string): Promise<number>;
  /** starts a scripted node and waits until the gateway lists its models */
  agent(script: AgentScript): Promise<OwlrunAgent>;
  close(): Promise<void>;
}

export async function startPaidGateway(
  fundSats = 1000,
  opts: Partial<GatewayOptions> = {},
): Promise<PaidGateway> {
  const dir = tempDir("owlrun-apis-");
  const running = await startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    port: 0,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 10 }),
      log: silentLogger,
    }),
    ...opts,
  });
  const mintUrl = `${running.url}/mint`;
  const purse = await fundedPurse(mintUrl, fundSats);
  const agents: OwlrunAgent[] = [];
  return {
    url: running.url,
    mintUrl,
    running,
    wallet: purse.wallet,
    token: purse.token,
    receive: purse.receive,
    async agent(script) {
      const a = await startAgent(running.url, script);
      agents.push(a);
      const dispatcher = running.gateway.dispatcher;
      const wanted = [...script.models, ...(script.embeddingModels ?? [])];
      await a.waitFor(
        () => {
          const served = new Set([
            ...dispatcher.models().map((m) => m.model),
            ...(dispatcher.embeddingModels?.() ?? []).map((m) => m.model),
          ]);
          return wanted.every((m) => served.has(m));
        },
        5_000,
        "the gateway to list the node's models",
      );
      return a;
    },
    async close() {
      for (const a of agents) await a.close();
      await running.close();
    },
  };
}
