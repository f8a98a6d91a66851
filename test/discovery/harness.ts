/**
 * A real gateway for the discovery suites: `startGateway` in this process with the bundled mint
 * (fake Lightning) mounted at /mint, on 127.0.0.1:0, and the MCP server card the CLI would give it.
 */
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { gatewayServerCard } from "../../src/mcp/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

export async function startDiscoveryGateway(): Promise<RunningGateway> {
  const dir = tempDir("owlrun-discovery-");
  return startGateway({
    dataDir: join(dir, "gateway"),
    trustedMints: [],
    port: 0,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    mcpServerCard: (url) => gatewayServerCard(url),
    bundledMint: await createBundledMint({
      dataDir: join(dir, "mint"),
      lightning: createLightningBackend("fake", { incomingDelayMs: 20 }),
      log: silentLogger,
    }),
  });
}
